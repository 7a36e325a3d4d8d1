-- Several nodes on one database (DESIGN.md §7). Every clock read here is the
-- database's (now()), never a node's, so nodes with skewed clocks agree.

-- One row per running process, kept alive by its heartbeat. A node whose row
-- is missing or expired is dead: its leases may be taken over and its sockets
-- no longer count.
CREATE TABLE nodes (
    id         uuid PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- The owner of each live set, with a fencing token. A row outlives its holder
-- (node_id NULL: released) so that the next token of the set is always
-- greater than every earlier one; it goes with its set.
CREATE TABLE set_leases (
    set_id      uuid PRIMARY KEY REFERENCES sets (id) ON DELETE CASCADE,
    node_id     uuid,
    token       bigint NOT NULL CHECK (token > 0),
    acquired_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX set_leases_node ON set_leases (node_id) WHERE node_id IS NOT NULL;

-- Live sockets per node and user, so that per-account caps hold across nodes.
CREATE TABLE live_sockets (
    node_id uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    n       int NOT NULL CHECK (n >= 0),
    PRIMARY KEY (node_id, user_id)
);
CREATE INDEX live_sockets_user ON live_sockets (user_id);

-- repcue_fence proves, inside the transaction that stores a batch of events,
-- that each set's lease is still held with the given token by a live node. It
-- locks each lease row FOR SHARE, so a takeover (an UPDATE of the row) waits
-- for the commit to end and then sees its rows; a commit that comes after a
-- takeover finds another token. It never locks the nodes row, only reads its
-- expiry: many commits at once would otherwise share it through multixacts.
-- A lease not held raises SQLSTATE RCF01 (internal/postgres: IsFenced).
CREATE FUNCTION repcue_fence(set_ids uuid[], tokens bigint[]) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lease  record;
    holder uuid;
BEGIN
    FOR lease IN SELECT DISTINCT u.set_id, u.token FROM unnest(set_ids, tokens) AS u (set_id, token) ORDER BY 1, 2 LOOP
        SELECT l.node_id INTO holder FROM set_leases l
        WHERE l.set_id = lease.set_id AND l.token = lease.token AND l.node_id IS NOT NULL
        FOR SHARE;
        -- clock_timestamp(), not now(): the check is made after the lock
        -- wait, which may have outlasted the holder's expiry.
        IF holder IS NULL OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = holder AND n.expires_at > clock_timestamp()) THEN
            RAISE EXCEPTION 'the lease of set % moved to another node', lease.set_id
                USING ERRCODE = 'RCF01';
        END IF;
    END LOOP;
    RETURN true;
END
$$;
