package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/repcue/repcue/internal/domain"
)

// NewSet is what starting a set needs: either a prescription or the ad hoc fields.
type NewSet struct {
	AthleteID      uuid.UUID
	PrescriptionID *uuid.UUID
	Variation      string // slug, for ad hoc sets
	LoadKG         float64
	TargetReps     int
	PauseHoldMS    int
	StartedAt      *time.Time // a set logged offline; nil: now
	Side           string     // left or right on per-side rungs, else ""
	// CoachWatching reports whether a linked coach has a live dashboard open;
	// the others get a push about the set's start. nil: none has.
	CoachWatching func(coachID uuid.UUID) bool
}

const setColumns = `s.id, s.athlete_id, s.prescription_id, v.slug, s.load_kg::float8, s.target_reps,
	s.pause_hold_ms, s.status, s.started_at, s.ended_at, s.variation_id, v.exercise_id, s.side`

func scanSet(row pgx.Row) (domain.Set, error) {
	var s domain.Set
	var started time.Time
	var ended *time.Time
	err := row.Scan(&s.ID, &s.AthleteID, &s.PrescriptionID, &s.Variation, &s.LoadKG, &s.TargetReps,
		&s.PauseHoldMS, &s.Status, &started, &ended, &s.VariationID, &s.ExerciseID, &s.Side)
	s.StartedAt = domain.Time(started)
	if ended != nil {
		t := domain.Time(*ended)
		s.EndedAt = &t
	}
	return s, err
}

// CreateSet starts a live set. A prescription must belong to the athlete (else
// not found) and supplies the variation, load, reps and hold; an athlete with a
// live set already gets a conflict.
func (s *Store) CreateSet(ctx context.Context, n NewSet) (domain.Set, error) {
	var set domain.Set
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		set, err = createSet(ctx, tx, n)
		return err
	})
	return set, s.withLiveSet(ctx, n.AthleteID, translate(err, "set"))
}

// createSet is CreateSet in the caller's transaction.
func createSet(ctx context.Context, tx pgx.Tx, n NewSet) (domain.Set, error) {
	var set domain.Set
	err := func() error {
		var id uuid.UUID
		var err error
		if n.PrescriptionID != nil {
			err = tx.QueryRow(ctx, `
				INSERT INTO sets (athlete_id, prescription_id, variation_id, load_kg, target_reps, pause_hold_ms, status, started_at, side)
				SELECT p.athlete_id, p.id, p.variation_id, p.load_kg, p.reps, p.pause_hold_ms, 'live', coalesce($3, now()), $4
				FROM prescriptions p WHERE p.id = $1 AND p.athlete_id = $2
				FOR KEY SHARE OF p -- waits for an edit or delete of the prescription under way, then reads its result
				RETURNING id`, *n.PrescriptionID, n.AthleteID, n.StartedAt, nullIfEmpty(n.Side)).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return domain.NotFound("prescription")
			}
		} else {
			err = tx.QueryRow(ctx, `
				INSERT INTO sets (athlete_id, variation_id, load_kg, target_reps, pause_hold_ms, status, started_at, side)
				SELECT $1, v.id, $3, $4, $5, 'live', coalesce($6, now()), $7 FROM variations v WHERE v.slug = $2
				RETURNING id`, n.AthleteID, n.Variation, n.LoadKG, n.TargetReps, n.PauseHoldMS, n.StartedAt, nullIfEmpty(n.Side)).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return domain.Invalid("variation", "unknown variation %q", n.Variation)
			}
		}
		if err != nil {
			if domain.ErrorCode(translate(err, "set")) == domain.CodeConflict {
				return &domain.Error{Code: domain.CodeConflict, Message: "the athlete already has a live set: end it first", Err: errLiveSet}
			}
			return err
		}
		if err := checkSide(ctx, tx, id, n.Side); err != nil { // progress.go
			return err
		}
		set, err = scanSet(tx.QueryRow(ctx, `SELECT `+setColumns+` FROM sets s JOIN variations v ON v.id = s.variation_id WHERE s.id = $1`, id))
		if err != nil {
			return err
		}
		return enqueueSetStartedNotice(ctx, tx, set, n.CoachWatching)
	}()
	return set, err
}

// FindSet returns a set by id, whoever asks; callers check visibility with CanWatch.
func (s *Store) FindSet(ctx context.Context, id uuid.UUID) (domain.Set, error) {
	set, err := scanSet(s.pool.QueryRow(ctx, `SELECT `+setColumns+` FROM sets s JOIN variations v ON v.id = s.variation_id WHERE s.id = $1`, id))
	return set, translate(err, "set")
}

// CanWatch reports whether a user may see an athlete's sets: the athlete, or a
// coach linked to the athlete.
func (s *Store) CanWatch(ctx context.Context, userID uuid.UUID, role domain.Role, athleteID uuid.UUID) (bool, error) {
	switch role {
	case domain.RoleAthlete:
		return userID == athleteID, nil
	case domain.RoleCoach:
		return s.CoachLinked(ctx, userID, athleteID)
	}
	return false, nil
}

// VisibleSet is the one check of who may see a set, for REST and live
// sockets alike: the set, when the user is its athlete or a linked coach;
// else not found (a set one may not see does not exist for one).
func (s *Store) VisibleSet(ctx context.Context, userID uuid.UUID, role domain.Role, setID uuid.UUID) (domain.Set, error) {
	set, err := s.FindSet(ctx, setID)
	if err != nil {
		return set, err
	}
	ok, err := s.CanWatch(ctx, userID, role, set.AthleteID)
	if err == nil && !ok {
		err = domain.NotFound("set")
	}
	return set, err
}

// LinkedCoaches lists the coaches linked to an athlete.
func (s *Store) LinkedCoaches(ctx context.Context, athleteID uuid.UUID) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT coach_id FROM coach_links WHERE athlete_id = $1`, athleteID)
	if err != nil {
		return nil, translate(err, "link")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return ids, translate(err, "link")
}

// SetFilter selects sets for a list.
type SetFilter struct {
	ViewerID   uuid.UUID
	ViewerRole domain.Role
	AthleteID  *uuid.UUID
	Status     string
	Limit      int
	// After is the position after which the page starts: started_at and id.
	AfterStarted *time.Time
	AfterID      uuid.UUID
}

// ListSets lists the sets a viewer may see, newest first: an athlete's own, or
// those of the athletes linked to a coach.
func (s *Store) ListSets(ctx context.Context, f SetFilter) ([]domain.Set, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+setColumns+` FROM sets s JOIN variations v ON v.id = s.variation_id
		WHERE ($1::text = 'athlete' AND s.athlete_id = $2
		       OR $1::text = 'coach' AND s.athlete_id IN (SELECT athlete_id FROM coach_links WHERE coach_id = $2))
		  AND ($3::uuid IS NULL OR s.athlete_id = $3)
		  AND ($4::text = '' OR s.status = $4)
		  AND ($5::timestamptz IS NULL OR (s.started_at, s.id) < ($5, $6))
		ORDER BY s.started_at DESC, s.id DESC
		LIMIT $7`, f.ViewerRole, f.ViewerID, f.AthleteID, f.Status, f.AfterStarted, f.AfterID, f.Limit)
	return collectSets(rows, err)
}

// collectSets reads the sets a query selected with setColumns.
func collectSets(rows pgx.Rows, err error) ([]domain.Set, error) {
	if err != nil {
		return nil, translate(err, "set")
	}
	sets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Set, error) { return scanSet(r) })
	return sets, translate(err, "set")
}

// SetEvent is one stored event of a set.
type SetEvent struct {
	SetID     uuid.UUID
	EventID   uuid.UUID
	N         int
	Type      string // rep.phase, set.end, cue.send, mistake.flag, cue.ack
	Phase     string
	CueID     *uuid.UUID
	MistakeID *uuid.UUID
	Text      string
	CueSeq    int64
	ActorID   uuid.UUID
	At        time.Time  // the event's own time: the server's receive time, or the phone's for an upload
	Clock     *time.Time // the clock reading to advance to before the event (migrations/0005_live_rebuild.sql)
	ClientTS  *int64
	Source    string // live or upload
	// Lease is the fencing token of the set's lease under which the event was
	// applied (AcquireLease). It is checked by AppendEvents, not stored.
	Lease int64
}

// SetEnding is written with the set.end event: the set's final status and summary.
type SetEnding struct {
	SetID   uuid.UUID
	EndedAt time.Time
	Summary any
	Rollup  *SetRollup // the figures the progress queries read (progress.go)
}

// AppendEvents stores a batch of events (and the endings among them) in one
// transaction. An event already stored (same set and event_id) is skipped, so a
// batch retried after an unknown outcome stores nothing twice. An event whose
// number n another writer has taken (two processes owning one set) fails the
// whole transaction with a conflict: such a write can never succeed.
//
// Every event must carry the token of its set's lease (Lease), and the batch is
// stored only if, at its commit, each of its sets' leases is still held with
// that token by a live node; otherwise nothing is stored and the error is a
// conflict for which IsFenced holds. An ending's set must have an event in the
// batch. The lease rows stay locked until the commit, so a takeover waits for
// it and then reads what it stored.
func (s *Store) AppendEvents(ctx context.Context, events []SetEvent, endings []SetEnding) error {
	// One multi-row INSERT for the whole batch (columns as arrays): one
	// statement for the server to plan and run, however many events.
	n := len(events)
	var (
		// pgtype.UUID, not uuid.UUID: the latter is encoded through its
		// driver.Valuer, as text, costing a string per id.
		setIDs, eventIDs, actors = make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		ns                       = make([]int32, n)
		types, sources           = make([]string, n), make([]string, n)
		phases, texts            = make([]*string, n), make([]*string, n)
		cueIDs, mistakeIDs       = make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		cueSeqs, clientTS        = make([]*int64, n), make([]*int64, n)
		ats, clocks              = make([]time.Time, n), make([]*time.Time, n)
	)
	for i := range events {
		e := &events[i]
		setIDs[i], eventIDs[i], actors[i], ns[i] = pgUUID(&e.SetID), pgUUID(&e.EventID), pgUUID(&e.ActorID), int32(e.N)
		types[i], sources[i], cueIDs[i], mistakeIDs[i] = e.Type, e.Source, pgUUID(e.CueID), pgUUID(e.MistakeID)
		ats[i], clocks[i], clientTS[i] = e.At, e.Clock, e.ClientTS
		if e.Phase != "" {
			phases[i] = &e.Phase
		}
		if e.Text != "" {
			texts[i] = &e.Text
		}
		if e.CueSeq != 0 {
			cueSeqs[i] = &e.CueSeq
		}
	}
	fenceSets, fenceTokens := leasesOf(events, endings)
	// The fence is an uncorrelated subquery: it runs once, before the first
	// row is inserted (migrations/0010_cluster.sql).
	const insert = `
		INSERT INTO set_events (set_id, event_id, n, type, phase, cue_id, mistake_id, text, cue_seq, actor_id, at, clock, client_ts, source)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::uuid[], $7::uuid[], $8::text[],
		                     $9::bigint[], $10::uuid[], $11::timestamptz[], $12::timestamptz[], $13::bigint[], $14::text[])
		WHERE (SELECT repcue_fence($15::uuid[], $16::bigint[]))
		ON CONFLICT (set_id, event_id) DO NOTHING`
	args := []any{setIDs, eventIDs, ns, types, phases, cueIDs, mistakeIDs, texts, cueSeqs, actors, ats, clocks, clientTS, sources,
		fenceSets, fenceTokens}
	if len(endings) == 0 && !slices.ContainsFunc(events, isLateAck) {
		// One statement is atomic by itself: one round trip, no BEGIN/COMMIT.
		_, err := s.pool.Exec(ctx, insert, args...)
		return translate(err, "event")
	}
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if n > 0 {
			b.Queue(insert, args...)
		} else {
			b.Queue(`SELECT repcue_fence($1::uuid[], $2::bigint[])`, fenceSets, fenceTokens)
		}
		for _, end := range endings {
			summary, err := json.Marshal(end.Summary)
			if err != nil {
				return err
			}
			b.Queue(`UPDATE sets SET status = 'ended', ended_at = $2, summary = $3 WHERE id = $1 AND status = 'live'`,
				end.SetID, end.EndedAt, summary)
			queueRollup(b, end.Rollup) // progress.go: the ended set's figures, in the same transaction
		}
		queueLateAcks(b, events) // progress.go: receipts that reach an ended set
		return tx.SendBatch(ctx, b).Close()
	}), "event")
}

// leasesOf lists the distinct (set, lease token) pairs a batch must prove.
// An ending without an event of its set in the batch proves nothing: it is
// listed with token 0, which no lease has.
func leasesOf(events []SetEvent, endings []SetEnding) (sets []pgtype.UUID, tokens []int64) {
	// A batch holds a few sets: a scan beats a map.
	add := func(set uuid.UUID, token int64) {
		for i := range sets {
			if sets[i].Bytes == set && tokens[i] == token {
				return
			}
		}
		sets, tokens = append(sets, pgtype.UUID{Bytes: set, Valid: true}), append(tokens, token)
	}
	for _, e := range events {
		add(e.SetID, e.Lease)
	}
	for _, end := range endings {
		if !slices.ContainsFunc(events, func(e SetEvent) bool { return e.SetID == end.SetID }) {
			add(end.SetID, 0)
		}
	}
	return sets, tokens
}

func pgUUID(id *uuid.UUID) pgtype.UUID {
	if id == nil {
		return pgtype.UUID{}
	}
	return pgtype.UUID{Bytes: *id, Valid: true}
}

// SetEvents returns a set's stored events in the order they were applied.
func (s *Store) SetEvents(ctx context.Context, setID uuid.UUID) ([]SetEvent, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT set_id, event_id, n, type, coalesce(phase, ''), cue_id, mistake_id, coalesce(text, ''),
		       coalesce(cue_seq, 0), actor_id, at, clock, client_ts, source
		FROM set_events WHERE set_id = $1 ORDER BY n`, setID)
	if err != nil {
		return nil, translate(err, "event")
	}
	defer rows.Close()
	var out []SetEvent
	for rows.Next() {
		var e SetEvent
		if err := rows.Scan(&e.SetID, &e.EventID, &e.N, &e.Type, &e.Phase, &e.CueID, &e.MistakeID, &e.Text,
			&e.CueSeq, &e.ActorID, &e.At, &e.Clock, &e.ClientTS, &e.Source); err != nil {
			return nil, translate(err, "event")
		}
		out = append(out, e)
	}
	return out, translate(rows.Err(), "event")
}

// AddFeedback stores a coach's note on a set.
func (s *Store) AddFeedback(ctx context.Context, setID, coachID uuid.UUID, text string) (domain.Feedback, error) {
	f := domain.Feedback{SetID: setID, CoachID: coachID, Text: text}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var at time.Time
		err := tx.QueryRow(ctx, `INSERT INTO set_feedback (set_id, coach_id, text) VALUES ($1, $2, $3) RETURNING id, created_at`,
			setID, coachID, text).Scan(&f.ID, &at)
		f.CreatedAt = domain.Time(at)
		if err != nil {
			return err
		}
		return enqueueFeedbackNotice(ctx, tx, f)
	})
	return f, translate(err, "feedback")
}

// ListFeedback returns a set's feedback, oldest first.
func (s *Store) ListFeedback(ctx context.Context, setID uuid.UUID) ([]domain.Feedback, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, set_id, coach_id, text, created_at FROM set_feedback WHERE set_id = $1 ORDER BY created_at, id`, setID)
	if err != nil {
		return nil, translate(err, "feedback")
	}
	defer rows.Close()
	out := []domain.Feedback{}
	for rows.Next() {
		var f domain.Feedback
		var at time.Time
		if err := rows.Scan(&f.ID, &f.SetID, &f.CoachID, &f.Text, &at); err != nil {
			return nil, translate(err, "feedback")
		}
		f.CreatedAt = domain.Time(at)
		out = append(out, f)
	}
	return out, translate(rows.Err(), "feedback")
}

// CreateTicket stores a live ticket for a signed-in user.
func (s *Store) CreateTicket(ctx context.Context, hash []byte, userID uuid.UUID, role domain.Role, sessionID uuid.UUID, ttl time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO live_tickets (ticket_hash, user_id, role, session_id, expires_at) VALUES ($1, $2, $3, $4, now() + $5::interval)`,
		hash, userID, role, sessionID, ttl)
	if err == nil {
		// Expired tickets are useless: drop them now and then, on the way.
		_, _ = s.pool.Exec(ctx, `DELETE FROM live_tickets WHERE expires_at < now() - interval '1 hour'`)
	}
	return translate(err, "ticket")
}

// UseTicket redeems a ticket once. A used, expired or unknown ticket is unauthorized.
func (s *Store) UseTicket(ctx context.Context, hash []byte) (uuid.UUID, domain.Role, uuid.UUID, error) {
	var uid, sid uuid.UUID
	var role domain.Role
	err := s.pool.QueryRow(ctx, `
		UPDATE live_tickets SET used_at = now()
		WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > now()
		RETURNING user_id, role, session_id`, hash).Scan(&uid, &role, &sid)
	if errors.Is(err, pgx.ErrNoRows) {
		return uid, role, sid, &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid, used or expired ticket"}
	}
	return uid, role, sid, translate(err, "ticket")
}

// ActiveSessions returns which of the given sessions are still active (not
// revoked, not expired, user not disabled): the hub closes the sockets of the rest.
func (s *Store) ActiveSessions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT t.family_id FROM refresh_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.family_id = ANY($1) AND t.revoked_at IS NULL AND t.expires_at > now() AND u.disabled_at IS NULL`, ids)
	if err != nil {
		return nil, translate(err, "session")
	}
	active, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, translate(err, "session")
	}
	out := make(map[uuid.UUID]bool, len(active))
	for _, id := range active {
		out[id] = true
	}
	return out, nil
}
