-- The rank of the login that recorded a citizen's claims (names, birth date,
-- gender, contacts): a login of a lower rank no longer overwrites them
-- (storage.Subject.ClaimsRank). Citizens recorded before have rank 0, so
-- their next login of any rank records its claims and its rank.
ALTER TABLE subjects ADD COLUMN claims_rank INTEGER NOT NULL DEFAULT 0;
