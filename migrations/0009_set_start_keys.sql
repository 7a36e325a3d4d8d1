-- Idempotency keys of POST /v1/sets (issue 11): a phone that retries a start
-- after a lost answer gets the set it started, not a 409 for its own live set.
-- Keys are the athlete's own (the same key from two athletes is two keys) and
-- live 24 hours: after that a key starts a new set. request_hash is the SHA-256
-- of the start's fields as read (canonical JSON), so the same key with another
-- body is told apart (409). A row is written in the transaction that creates
-- the set, so only a start that succeeded is remembered; a refused start (the
-- athlete had a live set, say) can be retried with the same key.
CREATE TABLE set_start_keys (
    athlete_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    set_id       uuid REFERENCES sets (id) ON DELETE CASCADE, -- null only inside the transaction that creates it
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (athlete_id, key)
);
