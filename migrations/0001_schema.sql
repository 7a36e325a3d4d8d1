-- Accounts, tokens, the exercise library, coaching and the audit trail.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL UNIQUE,            -- normalised: trimmed, lower case
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('athlete', 'coach', 'admin')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

-- Refresh tokens are opaque random strings; only their SHA-256 is stored. Every
-- rotation stays in the family of the login that started it, so a replayed token
-- can revoke the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id),
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE exercises (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text NOT NULL UNIQUE,
    name       text NOT NULL,
    summary    text NOT NULL,
    setup      text NOT NULL,
    execution  text NOT NULL,
    key_tips   text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE focus_points (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    exercise_id uuid NOT NULL REFERENCES exercises (id),
    position    int NOT NULL,
    title       text NOT NULL,
    detail      text NOT NULL,
    UNIQUE (exercise_id, position)
);

-- Variations form a progression ladder ordered by position; advance_when holds
-- the criteria for moving to the next rung (sets, reps, and free-form extras).
CREATE TABLE variations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    exercise_id  uuid NOT NULL REFERENCES exercises (id),
    slug         text NOT NULL UNIQUE,
    name         text NOT NULL,
    position     int NOT NULL,
    loading      text NOT NULL,
    advance_when jsonb NOT NULL DEFAULT '{}',
    description  text NOT NULL,
    UNIQUE (exercise_id, position)
);

CREATE TABLE cues (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    exercise_id uuid NOT NULL REFERENCES exercises (id),
    text        text NOT NULL,
    phase       text NOT NULL CHECK (phase IN ('setup', 'concentric', 'lockout', 'eccentric', 'any')),
    priority    int NOT NULL DEFAULT 0,
    version     int NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz                -- soft delete: old sets still resolve the cue
);
CREATE INDEX cues_exercise ON cues (exercise_id) WHERE deleted_at IS NULL;

-- code names a mistake the server itself detects (for example no_pause_at_top);
-- mistakes an admin adds have none.
CREATE TABLE mistakes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    exercise_id uuid NOT NULL REFERENCES exercises (id),
    code        text,
    name        text NOT NULL,
    fix         text NOT NULL,
    version     int NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    UNIQUE (exercise_id, code)
);

-- The cues that fix a mistake, in order; the first is the one pushed to the athlete.
CREATE TABLE mistake_cues (
    mistake_id uuid NOT NULL REFERENCES mistakes (id),
    cue_id     uuid NOT NULL REFERENCES cues (id),
    position   int NOT NULL,
    PRIMARY KEY (mistake_id, cue_id)
);

-- Every admin change to the library: who, when, and the entity before and after.
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id  uuid NOT NULL REFERENCES users (id),
    action    text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    entity    text NOT NULL,
    entity_id uuid NOT NULL,
    before    jsonb,
    after     jsonb
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id DESC);

CREATE TABLE coach_invites (
    code       text PRIMARY KEY,
    coach_id   uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    used_by    uuid REFERENCES users (id)
);

CREATE TABLE coach_links (
    coach_id   uuid NOT NULL REFERENCES users (id),
    athlete_id uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (coach_id, athlete_id)
);
CREATE INDEX coach_links_athlete ON coach_links (athlete_id);

CREATE TABLE prescriptions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    coach_id      uuid NOT NULL REFERENCES users (id),
    athlete_id    uuid NOT NULL REFERENCES users (id),
    variation_id  uuid NOT NULL REFERENCES variations (id),
    sets          int NOT NULL CHECK (sets BETWEEN 1 AND 20),
    reps          int NOT NULL CHECK (reps BETWEEN 1 AND 100),
    load_kg       numeric(6, 2) NOT NULL CHECK (load_kg >= 0),
    pause_hold_ms int NOT NULL CHECK (pause_hold_ms BETWEEN 0 AND 60000),
    scheduled_on  date NOT NULL,
    notes         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prescriptions_athlete ON prescriptions (athlete_id, scheduled_on, id);

-- A set an athlete performs. At most one live set per athlete.
CREATE TABLE sets (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    athlete_id      uuid NOT NULL REFERENCES users (id),
    prescription_id uuid REFERENCES prescriptions (id),
    variation_id    uuid NOT NULL REFERENCES variations (id),
    load_kg         numeric(6, 2) NOT NULL CHECK (load_kg >= 0),
    target_reps     int NOT NULL CHECK (target_reps BETWEEN 1 AND 100),
    pause_hold_ms   int NOT NULL CHECK (pause_hold_ms BETWEEN 0 AND 60000),
    status          text NOT NULL CHECK (status IN ('live', 'ended')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    summary         jsonb
);
CREATE UNIQUE INDEX sets_one_live_per_athlete ON sets (athlete_id) WHERE status = 'live';
CREATE INDEX sets_athlete ON sets (athlete_id, started_at DESC, id DESC);
