-- A counter that moves with every change to the clients table, whoever makes
-- it (a node, `ponte client`, an administrator's SQL), so that every node can
-- keep the clients in memory and know with one cheap read when to drop them.
CREATE TABLE client_version (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO client_version (id, version) VALUES (1, 1);

CREATE TRIGGER clients_version_insert AFTER INSERT ON clients
BEGIN UPDATE client_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER clients_version_update AFTER UPDATE ON clients
BEGIN UPDATE client_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER clients_version_delete AFTER DELETE ON clients
BEGIN UPDATE client_version SET version = version + 1 WHERE id = 1; END;
