-- Accounts: verified emails, single-use email tokens (verification, email
-- change, password reset; only their SHA-256 is stored), a mail outbox sent
-- after commit, deleted accounts kept as tombstones, and prescription versions
-- for If-Match.

-- email_verified_at: set when the owner confirmed the address (the link of a
-- verification mail), or by the operator (admins made by `repcue admin create`).
-- Accounts made before verification existed are unverified, except admins.
-- deleted_at: the account was deleted (DELETE /v1/me): the row stays as a
-- tombstone without personal data, so rows other people keep (a coach's
-- feedback on a set, an audit row) still name an account.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz, ADD COLUMN deleted_at timestamptz;
UPDATE users SET email_verified_at = created_at WHERE role = 'admin';

-- purpose: verify (the sign-up address), change_email (email is the new
-- address, applied on confirmation), reset (a password reset). A token is used
-- once: used_at.
CREATE TABLE email_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id),
    purpose    text NOT NULL CHECK (purpose IN ('verify', 'change_email', 'reset')),
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);

-- Mail is written here in the transaction that makes it necessary and sent
-- afterwards by a dispatcher (internal/mail), which claims due rows with
-- FOR UPDATE SKIP LOCKED and holds the row lock while it delivers, so two
-- processes never send one message twice. The body holds a link with a token:
-- it is cleared once the message is sent, given up or expired.
CREATE TABLE mail_outbox (
    id              bigserial PRIMARY KEY,
    user_id         uuid REFERENCES users (id),
    kind            text NOT NULL,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,      -- not sent by then: dropped (its link has expired)
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        int NOT NULL DEFAULT 0,
    last_error      text,
    sent_at         timestamptz,
    failed_at       timestamptz,
    -- A password-reset mail is written for any address asked about (so that
    -- the request does the same work whether or not it has an account): the
    -- dispatcher looks the account up when it delivers, stores this token for
    -- it (email_tokens) and sends, or drops the mail when there is none.
    reset_token_hash bytea
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- A prescription's version is its ETag: edits and deletes need If-Match.
ALTER TABLE prescriptions ADD COLUMN version int NOT NULL DEFAULT 1;
CREATE INDEX sets_prescription ON sets (prescription_id) WHERE prescription_id IS NOT NULL;
