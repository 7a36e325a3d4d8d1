-- Live sets: every event of a set, coach feedback, and single-use live tickets.

-- Every event applied to a set, in the order its owner applied it (n). event_id is
-- the phone's id for rep phases and set.end (a resent event is stored once), and
-- a server-made id for coach cues, mistake flags and cue receipts. Refused events
-- are not stored. at is the event's own time: the server's receive time for live
-- events, the phone's own time for events uploaded after an offline set. The rep
-- timer never runs back: an event timed before the latest time it applied counts
-- as that time, and a rebuild that applies the rows in order of n does the same.
-- (0004 adds clock, the clock reading a rebuild advances to before the event.)
CREATE TABLE set_events (
    set_id      uuid NOT NULL REFERENCES sets (id),
    event_id    uuid NOT NULL,
    n           int NOT NULL,
    type        text NOT NULL CHECK (type IN ('rep.phase', 'set.end', 'cue.send', 'mistake.flag', 'cue.ack')),
    phase       text CHECK (phase IN ('up', 'top', 'down', 'bottom')),
    cue_id      uuid,
    mistake_id  uuid,
    text        text,
    cue_seq     bigint,
    actor_id    uuid NOT NULL REFERENCES users (id),
    at          timestamptz NOT NULL,
    client_ts   bigint,
    source      text NOT NULL CHECK (source IN ('live', 'upload')),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (set_id, event_id),
    UNIQUE (set_id, n)
);

CREATE TABLE set_feedback (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    set_id     uuid NOT NULL REFERENCES sets (id),
    coach_id   uuid NOT NULL REFERENCES users (id),
    text       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX set_feedback_set ON set_feedback (set_id, created_at);

-- Tickets let a browser open the live socket without putting its access token in
-- a URL. Only their SHA-256 is stored; each is used once and lives about 30 s.
CREATE TABLE live_tickets (
    ticket_hash bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    role        text NOT NULL,
    session_id  uuid NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX live_tickets_expiry ON live_tickets (expires_at);
