-- A counter that moves with every change to the clients table, whoever makes
-- it (a node, `ponte client`, an administrator's SQL), so that every node can
-- keep the clients in memory and know with one cheap read when to drop them.
CREATE TABLE client_version (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO client_version (id, version) VALUES (1, 1);

CREATE FUNCTION clients_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE client_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER clients_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION clients_bump_version();
