-- The hip-thrust library: the exercise, its progression ladder, the technique
-- focus points, the four coaching cues and the common mistakes with their fixes.
-- Written for repcue from the hip-thrust notes in shared/seeds; the four cue
-- phrases are the sport's own words and are stored exactly as coaches say them.

INSERT INTO exercises (id, slug, name, summary, setup, execution, key_tips) VALUES (
    'a1f0c3d2-0000-4000-8000-000000000001',
    'hip-thrust',
    'Hip Thrust',
    'A glute-first hinge: the upper back rests on a bench and the hips drive a load up to full extension, so the glutes can be loaded hard while the lower back stays out of the way.',
    'Sit on the floor with your shoulder blades against the edge of a padded bench. Roll the bar (or place the dumbbell) into the fold of your hips, with a pad under it if it bites. Plant your feet flat, about hip-width apart.',
    'Brace your trunk, keep your chin tucked and push the floor away through your heels until your thighs and torso make one straight line. Hold the top for a one-count squeeze, then lower under control until your glutes hang just above the floor, and go again.',
    ARRAY[
        'At the top your shins should be close to vertical: that is where the glutes work hardest.',
        'Breathe out as you lock out to keep the trunk stiff.',
        'If your knees drift inward, loop a mini-band just above them and press out against it.'
    ]
);

INSERT INTO focus_points (exercise_id, position, title, detail) VALUES
    ('a1f0c3d2-0000-4000-8000-000000000001', 1, 'Foot placement',
     'Slide your feet nearer or farther until your shins stand vertical at lockout.'),
    ('a1f0c3d2-0000-4000-8000-000000000001', 2, 'Posterior pelvic tilt',
     'A small tuck of the pelvis at the top stops the lower back from over-extending.'),
    ('a1f0c3d2-0000-4000-8000-000000000001', 3, 'Neutral rib cage',
     'Keep the ribs from flaring so the tension stays in the glutes instead of the spine.'),
    ('a1f0c3d2-0000-4000-8000-000000000001', 4, 'Pause and squeeze',
     'A one-second hold at the top teaches you to feel the glutes finish the rep.');

-- The progression ladder, easiest first. advance_when says when to move on.
INSERT INTO variations (exercise_id, slug, name, position, loading, advance_when, description) VALUES
    ('a1f0c3d2-0000-4000-8000-000000000001', 'bodyweight-hip-thrust', 'Bodyweight Hip Thrust', 1, 'bodyweight',
     '{"sets": 3, "reps": 20, "note": "Own three clean sets of twenty before adding any load."}',
     'No load at all: learn the bench position, the tuck and the pause.'),
    ('a1f0c3d2-0000-4000-8000-000000000001', 'dumbbell-hip-thrust', 'Dumbbell Hip Thrust', 2, 'dumbbell',
     '{"sets": 3, "reps": 12, "note": "When a heavy dumbbell moves for three sets of twelve with a full pause, take the bar."}',
     'A dumbbell held across the hips gives a moderate, easy-to-set-up load.'),
    ('a1f0c3d2-0000-4000-8000-000000000001', 'barbell-hip-thrust', 'Barbell Hip Thrust', 3, 'barbell',
     '{"sets": 5, "reps": 5, "note": "The main strength rung: build to five sets of five, then keep adding weight."}',
     'The standard heavy version: a padded barbell in the hip crease.'),
    ('a1f0c3d2-0000-4000-8000-000000000001', 'single-leg-hip-thrust', 'Single-Leg Hip Thrust', 4, 'bodyweight-unilateral',
     '{"sets": 3, "reps": 10, "per_side": true, "note": "Even out both sides at ten reps each before loading one leg."}',
     'One foot down, the other leg raised: twice the demand per side, good for fixing a left-right imbalance.'),
    ('a1f0c3d2-0000-4000-8000-000000000001', 'banded-hip-thrust', 'Banded Hip Thrust', 5, 'barbell-plus-band',
     '{"sets": 4, "reps": 8, "note": "Add the band once the barbell rung is solid; keep the knees pressed out on every rep."}',
     'A mini-band above the knees adds hip-abduction work to the thrust.');

-- The four cues. Each phase has one clear winner; "Ribs down" fits any phase and
-- is the fallback (for the lowering, which has no cue of its own).
INSERT INTO cues (id, exercise_id, text, phase, priority) VALUES
    ('a1f0c3d2-0000-4000-8000-0000000000c1', 'a1f0c3d2-0000-4000-8000-000000000001', 'Tuck, then thrust', 'setup', 10),
    ('a1f0c3d2-0000-4000-8000-0000000000c2', 'a1f0c3d2-0000-4000-8000-000000000001', 'Drive through heels', 'concentric', 10),
    ('a1f0c3d2-0000-4000-8000-0000000000c3', 'a1f0c3d2-0000-4000-8000-000000000001', 'Pause and squeeze', 'lockout', 10),
    ('a1f0c3d2-0000-4000-8000-0000000000c4', 'a1f0c3d2-0000-4000-8000-000000000001', 'Ribs down', 'any', 1);

-- Common mistakes and their fixes; the first linked cue is the one pushed to the
-- athlete. no_pause_at_top is the one the rep timer detects by itself.
INSERT INTO mistakes (id, exercise_id, code, name, fix) VALUES
    ('a1f0c3d2-0000-4000-8000-0000000000d1', 'a1f0c3d2-0000-4000-8000-000000000001', NULL,
     'Over-arching the back', 'Finish with a slight pelvic tuck and keep the ribs stacked, so the lockout comes from the hips, not the lower back.'),
    ('a1f0c3d2-0000-4000-8000-0000000000d2', 'a1f0c3d2-0000-4000-8000-000000000001', NULL,
     'Feet too far forward', 'Bring the feet back toward the bench until the shins are vertical at the top; too far out turns it into a hamstring exercise.'),
    ('a1f0c3d2-0000-4000-8000-0000000000d3', 'a1f0c3d2-0000-4000-8000-000000000001', NULL,
     'Bar rolling up the belly', 'Use a pad and set the bar deep in the hip crease, and tuck before you drive so it stays put.'),
    ('a1f0c3d2-0000-4000-8000-0000000000d4', 'a1f0c3d2-0000-4000-8000-000000000001', 'no_pause_at_top',
     'No pause at top', 'Hold the lockout for a full count before lowering; skipping the pause gives away the peak tension.');

INSERT INTO mistake_cues (mistake_id, cue_id, position) VALUES
    ('a1f0c3d2-0000-4000-8000-0000000000d1', 'a1f0c3d2-0000-4000-8000-0000000000c4', 1),
    ('a1f0c3d2-0000-4000-8000-0000000000d1', 'a1f0c3d2-0000-4000-8000-0000000000c1', 2),
    ('a1f0c3d2-0000-4000-8000-0000000000d2', 'a1f0c3d2-0000-4000-8000-0000000000c2', 1),
    ('a1f0c3d2-0000-4000-8000-0000000000d3', 'a1f0c3d2-0000-4000-8000-0000000000c1', 1),
    ('a1f0c3d2-0000-4000-8000-0000000000d4', 'a1f0c3d2-0000-4000-8000-0000000000c3', 1);
