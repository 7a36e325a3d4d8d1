package postgres

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
)

// BookCue is a cue as the live rep timer sees it.
type BookCue struct {
	ID       uuid.UUID `json:"id"`
	Text     string    `json:"text"`
	Phase    string    `json:"phase"`
	Priority int       `json:"priority"`
}

// BookMistake is a mistake and the cue that fixes it (the first linked active cue).
type BookMistake struct {
	ID   uuid.UUID `json:"id"`
	Code string    `json:"code"`
	Name string    `json:"name"`
	Fix  *BookCue  `json:"fix"`
}

// SetCueBook reads the cue library a set uses: pinned when the set started
// (sets.cue_book, see migrations/0005_live_rebuild.sql), so that an admin's
// later edit never changes how the set is rebuilt.
func (s *Store) SetCueBook(ctx context.Context, setID uuid.UUID) ([]BookCue, []BookMistake, error) {
	var raw []byte
	if err := s.pool.QueryRow(ctx, `SELECT cue_book FROM sets WHERE id = $1`, setID).Scan(&raw); err != nil {
		return nil, nil, translate(err, "set")
	}
	var book struct {
		Cues     []BookCue     `json:"cues"`
		Mistakes []BookMistake `json:"mistakes"`
	}
	if err := json.Unmarshal(raw, &book); err != nil {
		return nil, nil, translate(err, "set")
	}
	return book.Cues, book.Mistakes, nil
}
