-- Push notifications: the devices people register, and the outbox of messages
-- to them. A message is written in the same transaction as what it announces
-- (a prescription, feedback, a set started) and sent after commit by a worker
-- (internal/push) that claims rows with FOR UPDATE SKIP LOCKED, so two
-- processes on one database never send one row twice.

-- One row per push subscription. kind names the transport: 'webpush' (RFC 8030
-- with VAPID, browsers and the coach dashboard) today; native APNs/FCM tokens
-- would be new kinds. An endpoint belongs to one browser, hence to one user at
-- a time: registering it again moves it (and drops what was queued for the
-- previous user).
CREATE TABLE push_devices (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('webpush')),
    endpoint   text NOT NULL UNIQUE,
    p256dh     text NOT NULL,               -- base64url, as the browser gave it
    auth       text NOT NULL,               -- base64url, as the browser gave it
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_devices_user ON push_devices (user_id, created_at, id);

-- One row per message and device. Deleted once sent, refused for good, expired
-- (expires_at: a stale notice is worth nothing) or out of attempts; a dropped
-- device (404/410) takes its rows with it.
CREATE TABLE push_outbox (
    id         bigserial PRIMARY KEY,
    device_id  uuid NOT NULL REFERENCES push_devices (id) ON DELETE CASCADE,
    payload    jsonb NOT NULL,
    urgency    text NOT NULL CHECK (urgency IN ('very-low', 'low', 'normal', 'high')),
    attempts   int NOT NULL DEFAULT 0,      -- sends tried so far
    next_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_error text
);
CREATE INDEX push_outbox_due ON push_outbox (next_at, id);
CREATE INDEX push_outbox_device ON push_outbox (device_id);
