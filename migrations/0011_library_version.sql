-- The library's version (the speed issue): one counter that every committed
-- change of what GET /v1/exercises/{slug} shows raises — exercises, their focus
-- points and variations, cues, mistakes and the cues linked to them — whoever
-- makes it: the admin API, a migration, psql. Each node caches the encoded
-- exercise with the version it was read at, and before answering from the cache
-- reads this one row: a change committed on any node is seen by the next request
-- on every node.
--
-- The raise runs at commit (a deferred constraint trigger), so the row is locked
-- only for the end of the transaction, after every other lock it takes: admin
-- edits that touch cues and mistake links at once cannot deadlock on it. It is
-- raised once per transaction (bumped_by), however many rows change.
CREATE TABLE library_version (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version   bigint NOT NULL,
    bumped_by xid8
);
INSERT INTO library_version (version) VALUES (1);

CREATE FUNCTION bump_library_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE library_version SET version = version + 1, bumped_by = pg_current_xact_id()
    WHERE bumped_by IS DISTINCT FROM pg_current_xact_id();
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER library_version AFTER INSERT OR UPDATE OR DELETE ON exercises
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_library_version();
CREATE CONSTRAINT TRIGGER library_version AFTER INSERT OR UPDATE OR DELETE ON focus_points
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_library_version();
CREATE CONSTRAINT TRIGGER library_version AFTER INSERT OR UPDATE OR DELETE ON variations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_library_version();
CREATE CONSTRAINT TRIGGER library_version AFTER INSERT OR UPDATE OR DELETE ON cues
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_library_version();
CREATE CONSTRAINT TRIGGER library_version AFTER INSERT OR UPDATE OR DELETE ON mistakes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_library_version();
CREATE CONSTRAINT TRIGGER library_version AFTER INSERT OR UPDATE OR DELETE ON mistake_cues
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_library_version();

-- TRUNCATE has no row triggers; it locks the whole table anyway.
CREATE TRIGGER library_version_truncate AFTER TRUNCATE ON exercises
    FOR EACH STATEMENT EXECUTE FUNCTION bump_library_version();
CREATE TRIGGER library_version_truncate AFTER TRUNCATE ON focus_points
    FOR EACH STATEMENT EXECUTE FUNCTION bump_library_version();
CREATE TRIGGER library_version_truncate AFTER TRUNCATE ON variations
    FOR EACH STATEMENT EXECUTE FUNCTION bump_library_version();
CREATE TRIGGER library_version_truncate AFTER TRUNCATE ON cues
    FOR EACH STATEMENT EXECUTE FUNCTION bump_library_version();
CREATE TRIGGER library_version_truncate AFTER TRUNCATE ON mistakes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_library_version();
CREATE TRIGGER library_version_truncate AFTER TRUNCATE ON mistake_cues
    FOR EACH STATEMENT EXECUTE FUNCTION bump_library_version();
