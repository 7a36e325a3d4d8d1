package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/progress"
)

// This file holds the storage of DESIGN.md §3 "Progress": the figures of ended
// sets (written with the ending, see migrations/…_progress.sql for why they are
// stored), the ladders, and the queries behind the progress endpoints.

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// checkSide enforces the side rule on a set just inserted (in its transaction):
// required on a per-side variation (also from a prescription), refused elsewhere.
func checkSide(ctx context.Context, tx pgx.Tx, setID uuid.UUID, side string) error {
	var perSide bool
	err := tx.QueryRow(ctx, `
		SELECT coalesce(v.advance_when->>'per_side', 'false') = 'true'
		FROM sets s JOIN variations v ON v.id = s.variation_id WHERE s.id = $1`, setID).Scan(&perSide)
	switch {
	case err != nil:
		return err
	case perSide && side == "":
		return domain.Invalid("side", "side (left or right) is required on a single-side variation")
	case !perSide && side != "":
		return domain.Invalid("side", "side is only taken on a single-side variation")
	}
	return nil
}

// The progress queries, by name: the methods below run them, and Explain shows
// their plans (docs/progress-queries.md).
const (
	// bounds: per athlete and exercise, the current rung, the first of its
	// latest three training days and its latest day with a loaded set (so that
	// "no loaded set yet" is judged on the whole history; an older day never
	// changes the rules' answer). Each branch below is then an index range scan
	// per athlete (OFFSET 0 keeps the planner from flattening it into a hash
	// join over the whole table, which it does when it cannot see the bounds).
	sqlProgressSets = `
		WITH cur AS (
			SELECT a.athlete_id, x.id AS exercise_id, l.variation_id
			FROM unnest($1::uuid[]) AS a (athlete_id)
			CROSS JOIN exercises x
			CROSS JOIN LATERAL (
				SELECT es.variation_id FROM ended_sets es
				WHERE es.athlete_id = a.athlete_id AND es.exercise_id = x.id
				ORDER BY es.ended_at DESC LIMIT 1) l
			WHERE $2::uuid IS NULL OR x.id = $2
		), bounds AS MATERIALIZED (
			SELECT cur.*,
			       (SELECT min(d.day) FROM (
			            SELECT DISTINCT es.day FROM ended_sets es
			            WHERE es.athlete_id = cur.athlete_id AND es.variation_id = cur.variation_id
			            ORDER BY es.day DESC LIMIT $3) d) AS first_day,
			       (SELECT max(l.day) FROM ended_sets l
			        WHERE l.athlete_id = cur.athlete_id AND l.variation_id = cur.variation_id AND l.load_kg > 0) AS loaded_day
			FROM cur
		), picked AS (
			SELECT b.athlete_id, b.exercise_id, es.* FROM bounds b CROSS JOIN LATERAL (
				SELECT es.set_id, es.variation_id, es.day, es.ended_at, es.load_kg, es.side, es.holds_met FROM ended_sets es
				WHERE es.athlete_id = b.athlete_id AND es.variation_id = b.variation_id AND es.day >= b.first_day
				OFFSET 0) es
			UNION ALL
			SELECT b.athlete_id, b.exercise_id, es.* FROM bounds b CROSS JOIN LATERAL (
				SELECT es.set_id, es.variation_id, es.day, es.ended_at, es.load_kg, es.side, es.holds_met FROM ended_sets es
				WHERE es.athlete_id = b.athlete_id AND es.variation_id = b.variation_id AND es.day = b.loaded_day
				OFFSET 0) es
			WHERE b.loaded_day < b.first_day
		)
		SELECT p.athlete_id, p.exercise_id, p.set_id, v.slug, p.day, p.ended_at, p.load_kg::float8, coalesce(p.side, ''), p.holds_met
		FROM picked p JOIN variations v ON v.id = p.variation_id`
	sqlSideFigures = `
		SELECT side, sum(reps)::int, sum(holds_met)::int FROM ended_sets
		WHERE athlete_id = $1 AND variation_id = $2 AND day BETWEEN $3 AND $4 AND side IS NOT NULL
		GROUP BY side`
	sqlBaseline = `
		SELECT coalesce(sum(reps), 0)::int, coalesce(sum(holds_met), 0)::int FROM ended_sets
		WHERE athlete_id = ANY($1) AND day BETWEEN $2 AND $3`
	// The counts hash-aggregate by text; the group's latest cue (for cue_id and
	// source) is then one index probe per group at its latest instant.
	sqlCueGroups = `
		WITH g AS (
			SELECT c.text, count(*)::int AS sent, count(*) FILTER (WHERE c.acknowledged)::int AS acked,
			       count(c.next_rep_hold_met)::int AS followed, count(*) FILTER (WHERE c.next_rep_hold_met)::int AS held,
			       max(c.at) AS last_at
			FROM ended_set_cues c
			WHERE c.athlete_id = ANY($1) AND c.at >= $2 AND c.at < $3
			GROUP BY c.text)
		SELECT l.cue_id, g.text, l.source, g.sent, g.acked, g.followed, g.held
		FROM g CROSS JOIN LATERAL (
			SELECT c.cue_id, c.source FROM ended_set_cues c
			WHERE c.athlete_id = ANY($1) AND c.at = g.last_at AND c.text = g.text
			ORDER BY c.seq DESC LIMIT 1) l
		ORDER BY g.sent DESC, g.text`
	sqlOverview = `
		SELECT u.id, u.display_name,
		       (SELECT s.id FROM sets s WHERE s.athlete_id = u.id AND s.status = 'live' LIMIT 1),
		       (SELECT max(es.day) FROM ended_sets es WHERE es.athlete_id = u.id),
		       coalesce(f.sets7, 0), coalesce(f.reps7, 0), coalesce(f.held7, 0), coalesce(f.reps14, 0), coalesce(f.held14, 0)
		FROM coach_links l JOIN users u ON u.id = l.athlete_id
		LEFT JOIN LATERAL (
			SELECT count(*) FILTER (WHERE es.day >= $3)::int AS sets7,
			       sum(es.reps) FILTER (WHERE es.day >= $3)::int AS reps7,
			       sum(es.holds_met) FILTER (WHERE es.day >= $3)::int AS held7,
			       sum(es.reps) FILTER (WHERE es.day < $3)::int AS reps14,
			       sum(es.holds_met) FILTER (WHERE es.day < $3)::int AS held14
			FROM ended_sets es WHERE es.athlete_id = u.id AND es.day BETWEEN $2 AND $4) f ON true
		WHERE l.coach_id = $1 AND u.disabled_at IS NULL`
	sqlCSV = `
		SELECT es.set_id, es.day, v.slug, es.side, es.load_kg::float8, r.n, r.concentric_ms, r.hold_ms, r.eccentric_ms, r.hold_met
		FROM ended_sets es JOIN variations v ON v.id = es.variation_id
		JOIN ended_set_reps r ON r.set_id = es.set_id
		WHERE es.athlete_id = $1 AND es.day BETWEEN $2 AND $3
		ORDER BY es.started_at, es.set_id, r.n`
	insightScope   = `es.athlete_id = $1 AND es.day BETWEEN $2 AND $3 AND ($4::uuid IS NULL OR es.exercise_id = $4)`
	sqlInsightSets = `
		SELECT date_trunc('week', es.day)::date, count(*)::int, sum(es.reps)::int, sum(es.holds_met)::int,
		       sum(es.load_kg * es.reps)::float8,
		       max(es.load_kg * (1 + es.reps / 30.0)) FILTER (WHERE es.load_kg > 0)::float8
		FROM ended_sets es WHERE ` + insightScope + ` GROUP BY 1`
	sqlInsightTempo = `
		SELECT date_trunc('week', es.day)::date, coalesce(sum(r.concentric_ms), 0)::int8, count(r.concentric_ms)::int8,
		       coalesce(sum(r.eccentric_ms), 0)::int8, count(r.eccentric_ms)::int8
		FROM ended_sets es JOIN ended_set_reps r ON r.set_id = es.set_id WHERE ` + insightScope + ` GROUP BY 1`
	sqlInsightMistakes = `
		SELECT date_trunc('week', es.day)::date, m.id, m.name, count(*)::int
		FROM ended_sets es JOIN ended_set_cues c ON c.set_id = es.set_id JOIN mistakes m ON m.id = c.mistake_id
		WHERE ` + insightScope + ` GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC, 3, 2`
)

// ProgressQueries are the names of the progress queries, for Explain.
var ProgressQueries = map[string]string{
	"progress_sets": sqlProgressSets, "side_figures": sqlSideFigures, "baseline": sqlBaseline,
	"cue_groups": sqlCueGroups, "overview": sqlOverview, "csv": sqlCSV,
	"insight_sets": sqlInsightSets, "insight_tempo": sqlInsightTempo, "insight_mistakes": sqlInsightMistakes,
}

// Explain runs EXPLAIN (ANALYZE, BUFFERS) on a named progress query.
func (s *Store) Explain(ctx context.Context, name string, args ...any) (string, error) {
	rows, err := s.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+ProgressQueries[name], args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// SetRollup is what an ended set adds up to for the progress queries.
type SetRollup struct {
	SetID, AthleteID, ExerciseID, VariationID uuid.UUID
	Day                                       domain.Date
	StartedAt, EndedAt                        time.Time
	LoadKG                                    float64
	Side                                      *string
	Reps                                      []RolledRep
	Cues                                      []RolledCue
}

// RolledRep is one rep's figures.
type RolledRep struct {
	N                                 int
	ConcentricMS, HoldMS, EccentricMS *int
	HoldMet                           bool
}

// RolledCue is one cue frame pushed during the set.
type RolledCue struct {
	Seq       int64
	At        time.Time
	CueID     *uuid.UUID
	Text      string
	Source    string
	MistakeID *uuid.UUID
	NextRep   int
	// NextRepHoldMet is the hold_met of rep NextRep; nil when no rep followed.
	NextRepHoldMet *bool
	Acknowledged   bool
}

// queueRollup adds the inserts of an ended set's figures to a batch. They are
// idempotent: a batch retried after an unknown outcome stores nothing twice.
func queueRollup(b *pgx.Batch, r *SetRollup) {
	if r == nil {
		return
	}
	held := 0
	n := make([]int32, len(r.Reps))
	conc, hold, ecc := make([]*int32, len(r.Reps)), make([]*int32, len(r.Reps)), make([]*int32, len(r.Reps))
	met := make([]bool, len(r.Reps))
	for i, rep := range r.Reps {
		n[i], conc[i], hold[i], ecc[i], met[i] = int32(rep.N), i32(rep.ConcentricMS), i32(rep.HoldMS), i32(rep.EccentricMS), rep.HoldMet
		if rep.HoldMet {
			held++
		}
	}
	b.Queue(`
		INSERT INTO ended_sets (set_id, athlete_id, exercise_id, variation_id, day, started_at, ended_at, load_kg, side, reps, holds_met)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (set_id) DO NOTHING`,
		r.SetID, r.AthleteID, r.ExerciseID, r.VariationID, r.Day.Time(), r.StartedAt, r.EndedAt, r.LoadKG, r.Side, len(r.Reps), held)
	b.Queue(`
		INSERT INTO ended_set_reps (set_id, n, concentric_ms, hold_ms, eccentric_ms, hold_met)
		SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::bool[])
		ON CONFLICT (set_id, n) DO NOTHING`, r.SetID, n, conc, hold, ecc, met)
	if len(r.Cues) == 0 {
		return
	}
	seq, at := make([]int64, len(r.Cues)), make([]time.Time, len(r.Cues))
	cueID, mistakeID := make([]*uuid.UUID, len(r.Cues)), make([]*uuid.UUID, len(r.Cues))
	text, source, next := make([]string, len(r.Cues)), make([]string, len(r.Cues)), make([]int32, len(r.Cues))
	nextMet, acked := make([]*bool, len(r.Cues)), make([]bool, len(r.Cues))
	for i, c := range r.Cues {
		seq[i], at[i], cueID[i], mistakeID[i], text[i], source[i], next[i] = c.Seq, c.At, c.CueID, c.MistakeID, c.Text, c.Source, int32(c.NextRep)
		nextMet[i], acked[i] = c.NextRepHoldMet, c.Acknowledged
	}
	b.Queue(`
		INSERT INTO ended_set_cues (set_id, athlete_id, seq, at, cue_id, text, source, mistake_id, next_rep, next_rep_hold_met, acknowledged)
		SELECT $1, $2, * FROM unnest($3::bigint[], $4::timestamptz[], $5::uuid[], $6::text[], $7::text[], $8::uuid[], $9::int[], $10::bool[], $11::bool[])
		ON CONFLICT (set_id, seq) DO NOTHING`, r.SetID, r.AthleteID, seq, at, cueID, text, source, mistakeID, next, nextMet, acked)
}

// queueLateAcks marks the cues of ended sets acknowledged by receipts in a
// batch. It is queued after the endings of the batch, so a receipt stored
// with (or after) its set's ending is never lost; on a live set it changes
// nothing (no rows yet: the replay at the end counts the receipt).
func queueLateAcks(b *pgx.Batch, events []SetEvent) {
	for _, e := range events {
		if isLateAck(e) {
			b.Queue(`UPDATE ended_set_cues SET acknowledged = true WHERE set_id = $1 AND seq = $2 AND NOT acknowledged`, e.SetID, e.CueSeq)
		}
	}
}

// isLateAck reports whether e is a receipt that may reach an ended set's figures.
func isLateAck(e SetEvent) bool { return e.Type == "cue.ack" && e.CueSeq > 0 }

func i32(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

// SaveRollup stores the figures of a set that ended before they were written
// with the ending (sets ended before this feature existed).
func (s *Store) SaveRollup(ctx context.Context, r SetRollup) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		queueRollup(b, &r)
		return tx.SendBatch(ctx, b).Close()
	}), "set")
}

// SetsWithoutRollup lists up to limit ended sets whose figures are not stored.
func (s *Store) SetsWithoutRollup(ctx context.Context, limit int) ([]domain.Set, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+setColumns+` FROM sets s JOIN variations v ON v.id = s.variation_id
		WHERE s.status = 'ended' AND NOT EXISTS (SELECT 1 FROM ended_sets es WHERE es.set_id = s.id)
		ORDER BY s.ended_at LIMIT $1`, limit)
	return collectSets(rows, err)
}

// advanceWhen is the part of a variation's advance_when the rules read.
type advanceWhen struct {
	Sets      int      `json:"sets"`
	Reps      int      `json:"reps"`
	PerSide   bool     `json:"per_side"`
	MinLoadKG *float64 `json:"min_load_kg"`
}

// Ladder is an exercise with its rungs.
type Ladder struct {
	ExerciseID uuid.UUID
	Slug       string
	Rungs      []progress.Rung
}

// Ladders returns the ladder of one exercise (by slug) or of every exercise
// ("" slug), ordered by slug. An unknown slug is not_found.
func (s *Store) Ladders(ctx context.Context, slug string) ([]Ladder, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e.id, e.slug, v.id, v.slug, v.name, v.position, v.advance_when, v.load_step_kg::float8
		FROM exercises e LEFT JOIN variations v ON v.exercise_id = e.id
		WHERE $1 = '' OR e.slug = $1
		ORDER BY e.slug, v.position`, slug)
	if err != nil {
		return nil, translate(err, "exercise")
	}
	defer rows.Close()
	var out []Ladder
	for rows.Next() {
		var exID uuid.UUID
		var exSlug string
		var id *uuid.UUID
		var vslug, name *string
		var pos *int
		var aw []byte
		var step *float64
		if err := rows.Scan(&exID, &exSlug, &id, &vslug, &name, &pos, &aw, &step); err != nil {
			return nil, translate(err, "exercise")
		}
		if len(out) == 0 || out[len(out)-1].ExerciseID != exID {
			out = append(out, Ladder{ExerciseID: exID, Slug: exSlug})
		}
		if id == nil {
			continue
		}
		var w advanceWhen
		_ = json.Unmarshal(aw, &w) // a malformed advance_when reads as zeros
		l := &out[len(out)-1]
		l.Rungs = append(l.Rungs, progress.Rung{ID: *id, Slug: *vslug, Name: *name, Position: *pos,
			Sets: max(w.Sets, 1), Reps: max(w.Reps, 1), PerSide: w.PerSide, MinLoadKG: w.MinLoadKG, LoadStepKG: step})
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "exercise")
	}
	if slug != "" && len(out) == 0 {
		return nil, domain.NotFound("exercise")
	}
	return out, nil
}

// ProgressSet is an ended set as the rules read it, with whose it is.
type ProgressSet struct {
	AthleteID, ExerciseID uuid.UUID
	progress.Set
}

// ProgressSets returns, for each athlete and exercise (one, or all when
// exerciseID is nil), the ended sets the rules need: those of the current rung
// (the variation of the latest ended set) on its latest three training days —
// enough to judge readiness (the latest day) and a run of three incomplete days
// — and on its latest day with a loaded set.
func (s *Store) ProgressSets(ctx context.Context, athletes []uuid.UUID, exerciseID *uuid.UUID) ([]ProgressSet, error) {
	rows, err := s.pool.Query(ctx, sqlProgressSets, athletes, exerciseID, progress.DeloadAfter)
	if err != nil {
		return nil, translate(err, "set")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProgressSet, error) {
		var p ProgressSet
		var day time.Time
		err := r.Scan(&p.AthleteID, &p.ExerciseID, &p.ID, &p.Variation, &day, &p.EndedAt, &p.LoadKG, &p.Side, &p.HoldsMet)
		p.Day = domain.DateOf(day)
		return p, err
	})
	return out, translate(err, "set")
}

// SideFigures sums the reps and holds met per side of one variation's ended sets
// over days from–to.
func (s *Store) SideFigures(ctx context.Context, athleteID, variationID uuid.UUID, from, to domain.Date) (left, right progress.SideFigures, err error) {
	rows, err := s.pool.Query(ctx, sqlSideFigures, athleteID, variationID, from.Time(), to.Time())
	if err != nil {
		return left, right, translate(err, "set")
	}
	defer rows.Close()
	for rows.Next() {
		var side string
		var f progress.SideFigures
		if err := rows.Scan(&side, &f.Reps, &f.HoldsMet); err != nil {
			return left, right, translate(err, "set")
		}
		if side == "left" {
			left = f
		} else {
			right = f
		}
	}
	return left, right, translate(rows.Err(), "set")
}

// LatestPauseHold is the pause_hold_ms of the athlete's latest ended set of an
// exercise; ok is false when there is none.
func (s *Store) LatestPauseHold(ctx context.Context, athleteID, exerciseID uuid.UUID) (ms int, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `
		SELECT s.pause_hold_ms FROM ended_sets es JOIN sets s ON s.id = es.set_id
		WHERE es.athlete_id = $1 AND es.exercise_id = $2 ORDER BY es.ended_at DESC LIMIT 1`, athleteID, exerciseID).Scan(&ms)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return ms, err == nil, translate(err, "set")
}

// LatestExercise is the exercise of the athlete's latest ended set.
func (s *Store) LatestExercise(ctx context.Context, athleteID uuid.UUID) (string, bool, error) {
	var slug string
	err := s.pool.QueryRow(ctx, `
		SELECT x.slug FROM ended_sets es JOIN exercises x ON x.id = es.exercise_id
		WHERE es.athlete_id = $1 ORDER BY es.ended_at DESC LIMIT 1`, athleteID).Scan(&slug)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return slug, err == nil, translate(err, "set")
}

// CreatePrescriptions stores several prescriptions of one coach for a linked
// athlete in one transaction: all or none.
func (s *Store) CreatePrescriptions(ctx context.Context, ps []domain.Prescription) ([]domain.Prescription, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for i := range ps {
			p := &ps[i]
			err := tx.QueryRow(ctx, `SELECT 1 FROM coach_links WHERE coach_id = $1 AND athlete_id = $2 FOR SHARE`,
				p.CoachID, p.AthleteID).Scan(new(int))
			if errors.Is(err, pgx.ErrNoRows) {
				return domain.NotFound("athlete")
			}
			if err != nil {
				return err
			}
			var created time.Time
			err = tx.QueryRow(ctx, `
				INSERT INTO prescriptions (coach_id, athlete_id, variation_id, sets, reps, load_kg, pause_hold_ms, scheduled_on, notes)
				SELECT $1, $2, v.id, $4, $5, $6, $7, $8, $9 FROM variations v WHERE v.slug = $3
				RETURNING id, created_at, version`,
				p.CoachID, p.AthleteID, p.Variation, p.Sets, p.Reps, p.LoadKg, p.PauseHoldMs, p.ScheduledOn.Time(), p.Notes).
				Scan(&p.ID, &created, &p.Version)
			if err != nil {
				return err
			}
			p.CreatedAt = domain.Time(created)
		}
		if len(ps) == 0 {
			return nil
		}
		// One call, one notice: the athlete hears of the first week's
		// prescription, not of each week's.
		return enqueuePrescriptionNotice(ctx, tx, ps[0])
	})
	return ps, translate(err, "prescription")
}

// WeekFigures are one ISO week's totals of an athlete's ended sets.
type WeekFigures struct {
	WeekStart                    domain.Date
	Sets, Reps, HoldsMet         int
	VolumeKG                     float64
	BestE1RM                     *float64
	ConcSum, ConcN, EccSum, EccN int64
	Mistakes                     []WeekMistake
}

// WeekMistake is a mistake counted in a week.
type WeekMistake struct {
	ID    uuid.UUID
	Name  string
	Count int
}

// Insights sums an athlete's ended sets per ISO week (Monday) over days
// from–to, of one exercise or all (nil). Weeks without sets are absent.
func (s *Store) Insights(ctx context.Context, athleteID uuid.UUID, exerciseID *uuid.UUID, from, to domain.Date) (map[domain.Date]*WeekFigures, error) {
	out := map[domain.Date]*WeekFigures{}
	week := func(t time.Time) *WeekFigures {
		d := domain.DateOf(t)
		if out[d] == nil {
			out[d] = &WeekFigures{WeekStart: d}
		}
		return out[d]
	}
	args := []any{athleteID, from.Time(), to.Time(), exerciseID}
	rows, err := s.pool.Query(ctx, sqlInsightSets, args...)
	if err != nil {
		return nil, translate(err, "set")
	}
	for rows.Next() {
		var t time.Time
		var f WeekFigures
		if err := rows.Scan(&t, &f.Sets, &f.Reps, &f.HoldsMet, &f.VolumeKG, &f.BestE1RM); err != nil {
			rows.Close()
			return nil, translate(err, "set")
		}
		w := week(t)
		f.WeekStart = w.WeekStart
		*w = f
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "set")
	}
	rows, err = s.pool.Query(ctx, sqlInsightTempo, args...)
	if err != nil {
		return nil, translate(err, "set")
	}
	for rows.Next() {
		var t time.Time
		var cs, cn, es, en int64
		if err := rows.Scan(&t, &cs, &cn, &es, &en); err != nil {
			rows.Close()
			return nil, translate(err, "set")
		}
		w := week(t)
		w.ConcSum, w.ConcN, w.EccSum, w.EccN = cs, cn, es, en
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "set")
	}
	rows, err = s.pool.Query(ctx, sqlInsightMistakes, args...)
	if err != nil {
		return nil, translate(err, "set")
	}
	for rows.Next() {
		var t time.Time
		var m WeekMistake
		if err := rows.Scan(&t, &m.ID, &m.Name, &m.Count); err != nil {
			rows.Close()
			return nil, translate(err, "set")
		}
		w := week(t)
		w.Mistakes = append(w.Mistakes, m)
	}
	return out, translate(rows.Err(), "set")
}

// CueGroup is the effect of the cues of one text.
type CueGroup struct {
	CueID                  *uuid.UUID
	Text, Source           string
	Sent, Acknowledged     int
	Followed, FollowedHeld int
}

// CueEffectiveness groups by text the cues pushed to the athletes between the
// instants from (inclusive) and to (exclusive), with the hold of the next rep
// to reach top after each, and the baseline: reps and holds met of every ended
// set of the athletes whose day is in fromDay–toDay.
func (s *Store) CueEffectiveness(ctx context.Context, athletes []uuid.UUID, fromDay, toDay domain.Date) ([]CueGroup, progress.SideFigures, error) {
	var base progress.SideFigures
	err := s.pool.QueryRow(ctx, sqlBaseline, athletes, fromDay.Time(), toDay.Time()).Scan(&base.Reps, &base.HoldsMet)
	if err != nil {
		return nil, base, translate(err, "set")
	}
	rows, err := s.pool.Query(ctx, sqlCueGroups, athletes, fromDay.Time(), toDay.AddDate(0, 0, 1).Time())
	if err != nil {
		return nil, base, translate(err, "cue")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CueGroup, error) {
		var g CueGroup
		return g, r.Scan(&g.CueID, &g.Text, &g.Source, &g.Sent, &g.Acknowledged, &g.Followed, &g.FollowedHeld)
	})
	return out, base, translate(err, "cue")
}

// OverviewRow is one linked athlete's recent figures.
type OverviewRow struct {
	AthleteID   uuid.UUID
	DisplayName string
	LiveSetID   *uuid.UUID
	LastSetOn   *domain.Date
	Sets7       int
	Last7       progress.SideFigures // today and the 6 days before
	Prior7      progress.SideFigures // the 7 days before those
}

// Overview lists a coach's linked athletes with their figures of the 14 days
// ending today.
func (s *Store) Overview(ctx context.Context, coachID uuid.UUID, today domain.Date) ([]OverviewRow, error) {
	rows, err := s.pool.Query(ctx, sqlOverview,
		coachID, today.AddDate(0, 0, -13).Time(), today.AddDate(0, 0, -6).Time(), today.Time())
	if err != nil {
		return nil, translate(err, "athlete")
	}
	return collect(rows, func(r pgx.CollectableRow) (OverviewRow, error) {
		var o OverviewRow
		var last *time.Time
		err := r.Scan(&o.AthleteID, &o.DisplayName, &o.LiveSetID, &last, &o.Sets7, &o.Last7.Reps, &o.Last7.HoldsMet, &o.Prior7.Reps, &o.Prior7.HoldsMet)
		if last != nil {
			d := domain.DateOf(*last)
			o.LastSetOn = &d
		}
		return o, err
	})
}

func collect[T any](rows pgx.Rows, fn pgx.RowToFunc[T]) ([]T, error) {
	out, err := pgx.CollectRows(rows, fn)
	return out, translate(err, "row")
}

// CSVRow is one rep of an ended set, for the spreadsheet export.
type CSVRow struct {
	SetID                             uuid.UUID
	Day                               domain.Date
	Variation                         string
	Side                              *string
	LoadKG                            float64
	Rep                               int
	ConcentricMS, HoldMS, EccentricMS *int
	HoldMet                           bool
}

// EachRepCSV calls fn for every rep of an athlete's ended sets with a day in
// from–to, ordered by the set's start, then rep.
func (s *Store) EachRepCSV(ctx context.Context, athleteID uuid.UUID, from, to domain.Date, fn func(CSVRow) error) error {
	rows, err := s.pool.Query(ctx, sqlCSV, athleteID, from.Time(), to.Time())
	if err != nil {
		return translate(err, "set")
	}
	defer rows.Close()
	for rows.Next() {
		var c CSVRow
		var day time.Time
		if err := rows.Scan(&c.SetID, &day, &c.Variation, &c.Side, &c.LoadKG, &c.Rep, &c.ConcentricMS, &c.HoldMS, &c.EccentricMS, &c.HoldMet); err != nil {
			return translate(err, "set")
		}
		c.Day = domain.DateOf(day)
		if err := fn(c); err != nil {
			return err
		}
	}
	return translate(rows.Err(), "set")
}

// UpdateProfile changes an account's display name and/or units.
func (s *Store) UpdateProfile(ctx context.Context, id uuid.UUID, displayName, units *string) (domain.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `
		UPDATE users SET display_name = coalesce($2, display_name), units = coalesce($3, units)
		WHERE id = $1 AND disabled_at IS NULL
		RETURNING `+accountColumns, id, displayName, units))
	return a, translate(err, "user")
}

// UnitsOf is a user's units (kg when the account is gone).
func (s *Store) UnitsOf(ctx context.Context, id uuid.UUID) (string, error) {
	units := progress.UnitsKG
	err := s.pool.QueryRow(ctx, `SELECT units FROM users WHERE id = $1`, id).Scan(&units)
	if errors.Is(err, pgx.ErrNoRows) {
		return progress.UnitsKG, nil
	}
	return units, translate(err, "user")
}

// VariationPatch is an admin's change to a variation.
type VariationPatch struct {
	LoadStepKG    *float64
	SetLoadStepKG bool // LoadStepKG given (nil clears it)
}

// UpdateVariation changes a variation's load_step_kg under If-Match, audited.
func (s *Store) UpdateVariation(ctx context.Context, actor, id uuid.UUID, match domain.VersionMatch, p VariationPatch) (domain.Variation, error) {
	var v domain.Variation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := findVariation(ctx, tx, id)
		if err != nil {
			return err
		}
		if !match.Matches(before.Version) {
			return staleVersion("variation", before, before.Version)
		}
		step := before.LoadStepKG
		if p.SetLoadStepKG {
			step = p.LoadStepKG
		}
		if _, err := tx.Exec(ctx, `UPDATE variations SET load_step_kg = $2, version = version + 1 WHERE id = $1`, id, step); err != nil {
			return err
		}
		if v, err = findVariation(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "update", "variation", id, before, v)
	})
	return v, translate(err, "variation")
}

const variationColumns = `id, slug, name, position, loading, advance_when, description, load_step_kg::float8, version`

func scanVariation(row pgx.Row) (domain.Variation, error) {
	var v domain.Variation
	return v, row.Scan(&v.ID, &v.Slug, &v.Name, &v.Position, &v.Loading, &v.AdvanceWhen, &v.Description, &v.LoadStepKG, &v.Version)
}

func findVariation(ctx context.Context, tx pgx.Tx, id uuid.UUID) (domain.Variation, error) {
	v, err := scanVariation(tx.QueryRow(ctx, `SELECT `+variationColumns+` FROM variations WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, domain.NotFound("variation")
	}
	return v, err
}

// LinkedCoachAthletes lists the ids of a coach's linked athletes.
func (s *Store) LinkedCoachAthletes(ctx context.Context, coachID uuid.UUID) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT athlete_id FROM coach_links WHERE coach_id = $1`, coachID)
	if err != nil {
		return nil, translate(err, "link")
	}
	return collect(rows, pgx.RowTo[uuid.UUID])
}
