-- Progress (DESIGN.md §3 "Progress"): the reader's units, the side of a
-- single-leg set, each variation's load step, and the per-set, per-rep and
-- per-cue figures of ENDED sets that the progress queries read.

ALTER TABLE users ADD COLUMN units text NOT NULL DEFAULT 'kg' CHECK (units IN ('kg', 'lb'));

ALTER TABLE sets ADD COLUMN side text CHECK (side IN ('left', 'right'));

-- load_step_kg: the smallest load change on a rung judged by load (null: not judged
-- by load). version: for If-Match on admin edits, as cues and mistakes have.
ALTER TABLE variations
    ADD COLUMN load_step_kg numeric(5, 2) CHECK (load_step_kg > 0),
    ADD COLUMN version int NOT NULL DEFAULT 1;
UPDATE variations SET load_step_kg = 2,
    advance_when = advance_when || '{"min_load_kg": 20}'
    WHERE slug = 'dumbbell-hip-thrust';
UPDATE variations SET load_step_kg = 2.5 WHERE slug IN ('barbell-hip-thrust', 'banded-hip-thrust');

-- Why these tables exist: a set's reps, and the cues pushed during it, are only
-- known by running its stored events through the rep timer (GET /v1/sets/{id}
-- does that for one set). The progress queries read thousands of sets at once,
-- so the figures of an ENDED set (which never change again) are written once, in
-- the transaction that ends it, by the owner that already holds them. The
-- columns copied from sets (athlete, variation, load, side, started_at,
-- ended_at) never
-- change after the end either, so the copies cannot drift; they are here so
-- that the queries are index-only. reps/holds_met are the same figures as in
-- sets.summary, typed, so that "qualifying" is a column and not a JSON lookup.
CREATE TABLE ended_sets (
    set_id       uuid PRIMARY KEY REFERENCES sets (id),
    athlete_id   uuid NOT NULL REFERENCES users (id),
    exercise_id  uuid NOT NULL REFERENCES exercises (id),
    variation_id uuid NOT NULL REFERENCES variations (id),
    day          date NOT NULL,          -- UTC date of the first rep event, else of started_at
    started_at   timestamptz NOT NULL,   -- the CSV's order
    ended_at     timestamptz NOT NULL,
    load_kg      numeric(6, 2) NOT NULL,
    side         text,
    reps         int NOT NULL,
    holds_met    int NOT NULL
);
CREATE INDEX ended_sets_by_day ON ended_sets (athlete_id, day)
    INCLUDE (variation_id, exercise_id, load_kg, reps, holds_met);
CREATE INDEX ended_sets_latest ON ended_sets (athlete_id, exercise_id, ended_at DESC);
CREATE INDEX ended_sets_rung_days ON ended_sets (athlete_id, variation_id, day DESC)
    INCLUDE (load_kg, side, reps, holds_met, ended_at);

-- One row per rep of an ended set (reptimer.RepFigures).
CREATE TABLE ended_set_reps (
    set_id        uuid NOT NULL REFERENCES ended_sets (set_id),
    n             int NOT NULL,
    concentric_ms int,
    hold_ms       int,
    eccentric_ms  int,
    hold_met      boolean NOT NULL,
    PRIMARY KEY (set_id, n)
);

-- One row per cue frame pushed during an ended set (coach cues, mistake flags
-- and the timer's own "no pause at top" fix). next_rep is the rep that was the
-- next to reach top after the cue (the rep count at the push, plus one), and
-- next_rep_hold_met its hold_met (null when no rep followed): a copy of
-- ended_set_reps, kept because the rep never changes and cue effectiveness
-- would otherwise join every cue to its rep. acknowledged copies the cue.ack
-- events: set at the end from the replay, and set by any receipt stored later
-- in the same transaction as that receipt (postgres.queueLateAcks).
CREATE TABLE ended_set_cues (
    set_id            uuid NOT NULL REFERENCES ended_sets (set_id),
    seq               bigint NOT NULL,
    athlete_id        uuid NOT NULL REFERENCES users (id),
    at                timestamptz NOT NULL,
    cue_id            uuid,
    text              text NOT NULL,
    source            text NOT NULL,
    mistake_id        uuid,
    next_rep          int NOT NULL,
    next_rep_hold_met boolean,
    acknowledged      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (set_id, seq)
);
CREATE INDEX ended_set_cues_by_time ON ended_set_cues (athlete_id, at)
    INCLUDE (text, seq, cue_id, source, acknowledged, next_rep_hold_met);
