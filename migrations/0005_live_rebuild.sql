-- What a rebuild of a set needs to give exactly the reps, figures, summary and
-- last seq the live set had (DESIGN.md §4): the clock readings its owner acted
-- on, and the cue library the set started with.

-- clock: the server time the set's owner had fired its clock deadlines (a hold's
-- end, a coach cue's expiry) up to since the previous event, when that fired
-- anything; null when it fired nothing. A rebuild advances the rep timer to it
-- before applying the event, so the frames the clock made live are made again,
-- in the same place. Rows written before this column existed have null.
ALTER TABLE set_events ADD COLUMN clock timestamptz;

-- The cue book of an exercise as it is now: its active cues, and its active
-- mistakes each with the fix cue pushed for it (the first active linked cue).
CREATE FUNCTION exercise_cue_book(exercise uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'cues', coalesce((
            SELECT jsonb_agg(jsonb_build_object('id', c.id, 'text', c.text, 'phase', c.phase, 'priority', c.priority)
                             ORDER BY c.priority DESC, c.id)
            FROM cues c WHERE c.exercise_id = exercise AND c.deleted_at IS NULL), '[]'::jsonb),
        'mistakes', coalesce((
            SELECT jsonb_agg(jsonb_build_object('id', m.id, 'code', coalesce(m.code, ''), 'name', m.name, 'fix', (
                       SELECT jsonb_build_object('id', c.id, 'text', c.text, 'phase', c.phase, 'priority', c.priority)
                       FROM mistake_cues mc JOIN cues c ON c.id = mc.cue_id
                       WHERE mc.mistake_id = m.id AND c.deleted_at IS NULL
                       ORDER BY mc.position LIMIT 1)) ORDER BY m.id)
            FROM mistakes m WHERE m.exercise_id = exercise AND m.deleted_at IS NULL), '[]'::jsonb))
$$;

-- cue_book: the cue library a set uses, pinned when it starts, so that an admin's
-- later edit reaches the next set and never changes how this one is rebuilt.
-- Every insert pins it (the trigger below), whoever inserts.
ALTER TABLE sets ADD COLUMN cue_book jsonb;
UPDATE sets s SET cue_book = exercise_cue_book(v.exercise_id) FROM variations v WHERE v.id = s.variation_id;
ALTER TABLE sets ALTER COLUMN cue_book SET NOT NULL;

CREATE FUNCTION sets_pin_cue_book() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.cue_book IS NULL THEN
        NEW.cue_book := exercise_cue_book((SELECT exercise_id FROM variations WHERE id = NEW.variation_id));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sets_pin_cue_book BEFORE INSERT ON sets FOR EACH ROW EXECUTE FUNCTION sets_pin_cue_book();
