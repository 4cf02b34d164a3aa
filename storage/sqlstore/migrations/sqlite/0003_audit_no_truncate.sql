-- SQLite has no TRUNCATE (DELETE is already refused by 0002); this version
-- exists so both dialects keep the same migration numbers.
SELECT 1;
