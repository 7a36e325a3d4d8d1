package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
)

// ListExercises lists exercises by name, after the (name, slug) position given.
func (s *Store) ListExercises(ctx context.Context, afterName, afterSlug string, limit int) ([]domain.ExerciseSummary, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT slug, name, summary FROM exercises
		WHERE $1 = '' AND $2 = '' OR (name, slug) > ($1, $2)
		ORDER BY name, slug LIMIT $3`, afterName, afterSlug, limit)
	if err != nil {
		return nil, translate(err, "exercise")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.ExerciseSummary, error) {
		var e domain.ExerciseSummary
		return e, r.Scan(&e.Slug, &e.Name, &e.Summary)
	})
	return out, translate(err, "exercise")
}

// LibraryVersion reads the library's version: every committed change of an
// exercise, its focus points, variations, cues, mistakes or mistake links raises
// it (triggers of migration 0010, whoever writes), so an exercise read at this
// version is still current while it is unchanged.
func (s *Store) LibraryVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM library_version`).Scan(&v)
	return v, translate(err, "library version")
}

// FindExerciseBySlug returns an exercise with its focus points and variations
// (in ladder order), its active cues and its active mistakes, in one snapshot,
// and the library's version in that snapshot (see LibraryVersion).
func (s *Store) FindExerciseBySlug(ctx context.Context, slug string) (domain.Exercise, int64, error) {
	var e domain.Exercise
	var version int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// The first statement takes the snapshot every later one reads.
		if err := tx.QueryRow(ctx, `SELECT version FROM library_version`).Scan(&version); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT id, slug, name, summary, setup, execution, key_tips FROM exercises WHERE slug = $1`, slug).
			Scan(&e.ID, &e.Slug, &e.Name, &e.Summary, &e.Setup, &e.Execution, &e.KeyTips)
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT id, title, detail FROM focus_points WHERE exercise_id = $1 ORDER BY position`, e.ID)
		if e.FocusPoints, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.FocusPoint, error) {
			var f domain.FocusPoint
			return f, r.Scan(&f.ID, &f.Title, &f.Detail)
		}); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT `+variationColumns+` FROM variations WHERE exercise_id = $1 ORDER BY position`, e.ID)
		if e.Variations, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Variation, error) {
			return scanVariation(r)
		}); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT `+cueColumns+` FROM cues WHERE exercise_id = $1 AND deleted_at IS NULL ORDER BY phase, priority DESC, id`, e.ID)
		if e.Cues, err = pgx.CollectRows(rows, scanCue); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT `+mistakeColumns+` FROM mistakes m WHERE exercise_id = $1 AND deleted_at IS NULL ORDER BY name, id`, e.ID)
		e.Mistakes, err = pgx.CollectRows(rows, scanMistake)
		return err
	})
	return e, version, translate(err, "exercise")
}

const cueColumns = `id, text, phase, priority, version`

func scanCue(r pgx.CollectableRow) (domain.Cue, error) {
	var c domain.Cue
	return c, r.Scan(&c.ID, &c.Text, &c.Phase, &c.Priority, &c.Version)
}

// mistakeColumns lists a mistake with the ids of its active cues in order.
const mistakeColumns = `m.id, m.name, m.fix, m.version,
	ARRAY(SELECT mc.cue_id FROM mistake_cues mc JOIN cues c ON c.id = mc.cue_id
	      WHERE mc.mistake_id = m.id AND c.deleted_at IS NULL ORDER BY mc.position)`

func scanMistake(r pgx.CollectableRow) (domain.Mistake, error) {
	var m domain.Mistake
	return m, r.Scan(&m.ID, &m.Name, &m.Fix, &m.Version, &m.CueIDs)
}

// audit records an admin change in the transaction that makes it.
func audit(ctx context.Context, tx pgx.Tx, actor uuid.UUID, action, entity string, id uuid.UUID, before, after any) error {
	enc := func(v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	b, err := enc(before)
	if err != nil {
		return err
	}
	a, err := enc(after)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor_id, action, entity, entity_id, before, after) VALUES ($1, $2, $3, $4, $5, $6)`,
		actor, action, entity, id, b, a)
	return err
}

func exerciseID(ctx context.Context, tx pgx.Tx, slug string) (uuid.UUID, error) {
	var id uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM exercises WHERE slug = $1`, slug).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, domain.NotFound("exercise")
	}
	return id, err
}

// staleVersion is the answer when If-Match names a version that is not current:
// it carries the entity as it is now.
func staleVersion(what string, current any, version int) error {
	return &domain.Error{Code: domain.CodePreconditionFailed, Current: current, CurrentVersion: version,
		Message: fmt.Sprintf("the %s has changed since you read it: compare with the current one", what)}
}

// FindCue reads a cue of the library (not a deleted one).
func (s *Store) FindCue(ctx context.Context, id uuid.UUID) (domain.Cue, error) {
	c, err := pgx.CollectExactlyOneRow(rowsOf(s.pool.Query(ctx, `SELECT `+cueColumns+` FROM cues WHERE id = $1 AND deleted_at IS NULL`, id)), scanCue)
	return c, translate(err, "cue")
}

// FindMistake reads a mistake of the library (not a deleted one) with its cues.
func (s *Store) FindMistake(ctx context.Context, id uuid.UUID) (domain.Mistake, error) {
	m, err := pgx.CollectExactlyOneRow(rowsOf(s.pool.Query(ctx, `SELECT `+mistakeColumns+` FROM mistakes m WHERE m.id = $1 AND m.deleted_at IS NULL`, id)), scanMistake)
	return m, translate(err, "mistake")
}

// CreateCue adds a cue to an exercise.
func (s *Store) CreateCue(ctx context.Context, actor uuid.UUID, slug string, c domain.Cue) (domain.Cue, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		exID, err := exerciseID(ctx, tx, slug)
		if err != nil {
			return err
		}
		c, err = pgx.CollectExactlyOneRow(rowsOf(tx.Query(ctx, `
			INSERT INTO cues (exercise_id, text, phase, priority) VALUES ($1, $2, $3, $4)
			RETURNING `+cueColumns, exID, c.Text, c.Phase, c.Priority)), scanCue)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "create", "cue", c.ID, nil, c)
	})
	return c, translate(err, "cue")
}

// CuePatch holds the fields of a cue to change; nil leaves a field as it is.
type CuePatch struct {
	Text     *string
	Phase    *domain.Phase
	Priority *int
}

// UpdateCue changes a cue if its current version matches the admin's If-Match.
func (s *Store) UpdateCue(ctx context.Context, actor, id uuid.UUID, match domain.VersionMatch, p CuePatch) (domain.Cue, error) {
	var after domain.Cue
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := pgx.CollectExactlyOneRow(rowsOf(tx.Query(ctx, `SELECT `+cueColumns+` FROM cues WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id)), scanCue)
		if err != nil {
			return err
		}
		if !match.Matches(before.Version) {
			return staleVersion("cue", before, before.Version)
		}
		after, err = pgx.CollectExactlyOneRow(rowsOf(tx.Query(ctx, `
			UPDATE cues SET text = coalesce($2, text), phase = coalesce($3, phase), priority = coalesce($4, priority),
			                version = version + 1, updated_at = now()
			WHERE id = $1 RETURNING `+cueColumns, id, p.Text, p.Phase, p.Priority)), scanCue)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "update", "cue", id, before, after)
	})
	return after, translate(err, "cue")
}

// DeleteCue hides a cue from the library; the row stays, so old sets still
// resolve it; match comes from If-Match (anything, without one).
func (s *Store) DeleteCue(ctx context.Context, actor, id uuid.UUID, match domain.VersionMatch) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := pgx.CollectExactlyOneRow(rowsOf(tx.Query(ctx, `SELECT `+cueColumns+` FROM cues WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id)), scanCue)
		if err != nil {
			return err
		}
		if !match.Matches(before.Version) {
			return staleVersion("cue", before, before.Version)
		}
		if _, err := tx.Exec(ctx, `UPDATE cues SET deleted_at = now(), version = version + 1 WHERE id = $1`, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "delete", "cue", id, before, nil)
	}), "cue")
}

// checkCueIDs requires 1–10 distinct active cues of the exercise.
func checkCueIDs(ctx context.Context, tx pgx.Tx, exID uuid.UUID, ids []uuid.UUID) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM cues WHERE id = ANY($1) AND exercise_id = $2 AND deleted_at IS NULL`, ids, exID).Scan(&n); err != nil {
		return err
	}
	if n != len(ids) {
		return domain.Invalid("cue_ids", "cue_ids must name active cues of this exercise")
	}
	return nil
}

func linkCues(ctx context.Context, tx pgx.Tx, mistakeID uuid.UUID, ids []uuid.UUID) error {
	if _, err := tx.Exec(ctx, `DELETE FROM mistake_cues WHERE mistake_id = $1`, mistakeID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO mistake_cues (mistake_id, cue_id, position)
		SELECT $1, cue_id, position FROM unnest($2::uuid[]) WITH ORDINALITY AS t(cue_id, position)`, mistakeID, ids)
	return err
}

func findMistake(ctx context.Context, tx pgx.Tx, id uuid.UUID) (domain.Mistake, uuid.UUID, error) {
	var exID uuid.UUID
	if err := tx.QueryRow(ctx, `SELECT exercise_id FROM mistakes WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id).Scan(&exID); err != nil {
		return domain.Mistake{}, exID, err
	}
	m, err := pgx.CollectExactlyOneRow(rowsOf(tx.Query(ctx, `SELECT `+mistakeColumns+` FROM mistakes m WHERE m.id = $1`, id)), scanMistake)
	return m, exID, err
}

// CreateMistake adds a mistake with the cues that fix it.
func (s *Store) CreateMistake(ctx context.Context, actor uuid.UUID, slug string, m domain.Mistake) (domain.Mistake, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		exID, err := exerciseID(ctx, tx, slug)
		if err != nil {
			return err
		}
		if err := checkCueIDs(ctx, tx, exID, m.CueIDs); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO mistakes (exercise_id, name, fix) VALUES ($1, $2, $3) RETURNING id`, exID, m.Name, m.Fix).Scan(&m.ID); err != nil {
			return err
		}
		if err := linkCues(ctx, tx, m.ID, m.CueIDs); err != nil {
			return err
		}
		if m, _, err = findMistake(ctx, tx, m.ID); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "create", "mistake", m.ID, nil, m)
	})
	return m, translate(err, "mistake")
}

// MistakePatch holds the fields of a mistake to change; nil leaves a field as it is.
type MistakePatch struct {
	Name, Fix *string
	CueIDs    []uuid.UUID // nil: unchanged
}

// UpdateMistake changes a mistake if its current version matches the admin's If-Match.
func (s *Store) UpdateMistake(ctx context.Context, actor, id uuid.UUID, match domain.VersionMatch, p MistakePatch) (domain.Mistake, error) {
	var after domain.Mistake
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		before, exID, err := findMistake(ctx, tx, id)
		if err != nil {
			return err
		}
		if !match.Matches(before.Version) {
			return staleVersion("mistake", before, before.Version)
		}
		if p.CueIDs != nil {
			if err := checkCueIDs(ctx, tx, exID, p.CueIDs); err != nil {
				return err
			}
			if err := linkCues(ctx, tx, id, p.CueIDs); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `
			UPDATE mistakes SET name = coalesce($2, name), fix = coalesce($3, fix), version = version + 1, updated_at = now()
			WHERE id = $1`, id, p.Name, p.Fix); err != nil {
			return err
		}
		if after, _, err = findMistake(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "update", "mistake", id, before, after)
	})
	return after, translate(err, "mistake")
}

// DeleteMistake hides a mistake (soft); match comes from If-Match.
// A mistake the rep timer detects by itself (it has a code) cannot be deleted:
// the timer would silently stop pushing its fix.
func (s *Store) DeleteMistake(ctx context.Context, actor, id uuid.UUID, match domain.VersionMatch) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		before, _, err := findMistake(ctx, tx, id)
		if err != nil {
			return err
		}
		var coded bool
		if err := tx.QueryRow(ctx, `SELECT code IS NOT NULL FROM mistakes WHERE id = $1`, id).Scan(&coded); err != nil {
			return err
		}
		if coded {
			return domain.Errorf(domain.CodeConflict, "the rep timer detects this mistake itself: edit it, but it cannot be deleted")
		}
		if !match.Matches(before.Version) {
			return staleVersion("mistake", before, before.Version)
		}
		if _, err := tx.Exec(ctx, `UPDATE mistakes SET deleted_at = now(), version = version + 1 WHERE id = $1`, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "delete", "mistake", id, before, nil)
	}), "mistake")
}

// AuditFilter selects audit entries; empty fields match everything.
type AuditFilter struct {
	Entity   string
	EntityID *uuid.UUID
	BeforeID int64 // entries older than this one (paging); 0: from the newest
	Limit    int
}

// ListAudit returns audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]domain.AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, at, actor_id, action, entity, entity_id, before, after FROM audit_log
		WHERE ($1 = '' OR entity = $1) AND ($2::uuid IS NULL OR entity_id = $2) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.Entity, f.EntityID, f.BeforeID, f.Limit)
	if err != nil {
		return nil, translate(err, "audit entry")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.AuditEntry, error) {
		var e domain.AuditEntry
		var at time.Time
		err := r.Scan(&e.ID, &at, &e.ActorID, &e.Action, &e.Entity, &e.EntityID, &e.Before, &e.After)
		e.At = domain.Time(at)
		return e, err
	})
	return out, translate(err, "audit entry")
}

// rowsOf passes a query's rows on: pgx also reports a failed query through
// rows.Err(), which the collect helpers check.
func rowsOf(rows pgx.Rows, _ error) pgx.Rows { return rows }
