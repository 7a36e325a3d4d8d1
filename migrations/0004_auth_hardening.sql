-- Sessions as rows to lock, refresh tokens that never branch, login throttles
-- every node shares, and audit rows written by the command line.

-- One row per refresh-token family (a sign-in). Refresh, logout and reuse
-- detection all lock this row first, so a logout and a refresh racing it are
-- serialised: whatever the refresh minted, the logout revokes.
CREATE TABLE sessions (
    id         uuid PRIMARY KEY,            -- the family id, the access token's sid
    user_id    uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

INSERT INTO sessions (id, user_id, created_at, revoked_at)
SELECT family_id, (array_agg(user_id))[1], min(created_at),
       CASE WHEN bool_and(revoked_at IS NOT NULL) THEN max(revoked_at) END
FROM refresh_tokens GROUP BY family_id;

ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_session FOREIGN KEY (family_id) REFERENCES sessions (id);

-- Failed-attempt counters (sign-in per account and per address, invite codes per
-- athlete). Each attempt is reserved by one INSERT … ON CONFLICT DO UPDATE before
-- the password is hashed, so concurrent attempts on one key are counted one by
-- one, on every node. until: no attempt before then. granted: whether the latest
-- attempt was let through (read back by the statement that made it).
CREATE TABLE auth_throttle (
    scope    text NOT NULL,
    key      text NOT NULL,
    failures int NOT NULL,
    until    timestamptz,
    last_at  timestamptz NOT NULL,
    granted  boolean NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX auth_throttle_last ON auth_throttle (last_at);

-- Changes made with `repcue admin …` have no signed-in actor: actor_id is null.
ALTER TABLE audit_log ALTER COLUMN actor_id DROP NOT NULL;

-- A token has at most one successor: a refresh retried within the grace window
-- is given the same successor again, so a family never branches.
ALTER TABLE refresh_tokens ADD COLUMN parent_id uuid REFERENCES refresh_tokens (id);
CREATE UNIQUE INDEX refresh_tokens_parent ON refresh_tokens (parent_id);
