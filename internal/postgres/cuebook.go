package postgres

import (
	"context"

	"github.com/google/uuid"
)

// BookCue is a cue as the live rep timer sees it.
type BookCue struct {
	ID       uuid.UUID
	Text     string
	Phase    string
	Priority int
}

// BookMistake is a mistake and the cue that fixes it (the first linked active cue).
type BookMistake struct {
	ID   uuid.UUID
	Code string
	Name string
	Fix  *BookCue
}

// LoadCueBook reads the active cues and mistakes of an exercise, as they are
// now: a set loads them when it starts, so admin edits reach the next set.
func (s *Store) LoadCueBook(ctx context.Context, exerciseID uuid.UUID) ([]BookCue, []BookMistake, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, text, phase, priority FROM cues
		WHERE exercise_id = $1 AND deleted_at IS NULL ORDER BY priority DESC, id`, exerciseID)
	if err != nil {
		return nil, nil, translate(err, "cue")
	}
	var cues []BookCue
	for rows.Next() {
		var c BookCue
		if err := rows.Scan(&c.ID, &c.Text, &c.Phase, &c.Priority); err != nil {
			rows.Close()
			return nil, nil, translate(err, "cue")
		}
		cues = append(cues, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, translate(err, "cue")
	}

	rows, err = s.pool.Query(ctx, `
		SELECT m.id, coalesce(m.code, ''), m.name, c.id, c.text, c.phase, c.priority
		FROM mistakes m
		LEFT JOIN LATERAL (
			SELECT c.* FROM mistake_cues mc JOIN cues c ON c.id = mc.cue_id
			WHERE mc.mistake_id = m.id AND c.deleted_at IS NULL
			ORDER BY mc.position LIMIT 1) c ON true
		WHERE m.exercise_id = $1 AND m.deleted_at IS NULL`, exerciseID)
	if err != nil {
		return nil, nil, translate(err, "mistake")
	}
	defer rows.Close()
	var mistakes []BookMistake
	for rows.Next() {
		var m BookMistake
		var id *uuid.UUID
		var text, phase *string
		var prio *int
		if err := rows.Scan(&m.ID, &m.Code, &m.Name, &id, &text, &phase, &prio); err != nil {
			return nil, nil, translate(err, "mistake")
		}
		if id != nil {
			m.Fix = &BookCue{ID: *id, Text: *text, Phase: *phase, Priority: *prio}
		}
		mistakes = append(mistakes, m)
	}
	return cues, mistakes, translate(rows.Err(), "mistake")
}
