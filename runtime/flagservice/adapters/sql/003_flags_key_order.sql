-- Paging orders and compares keys in byte order (COLLATE "C") whatever the database's collation;
-- this index matches that expression. Additive and idempotent.

CREATE INDEX IF NOT EXISTS flags_key_c ON flags (key COLLATE "C");
