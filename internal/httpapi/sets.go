package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/reptimer"
)

type createSetRequest struct {
	PrescriptionID *string  `json:"prescription_id"`
	Variation      *string  `json:"variation"`
	LoadKG         *float64 `json:"load_kg"`
	TargetReps     *int     `json:"target_reps"`
	PauseHoldMS    *int     `json:"pause_hold_ms"`
	StartedAt      *string  `json:"started_at"` // a set logged offline (progress.go)
	Side           *string  `json:"side"`       // left or right, on per-side rungs
}

func (r createSetRequest) validate(athlete uuid.UUID, now time.Time) (postgres.NewSet, error) {
	n := postgres.NewSet{AthleteID: athlete}
	var err error
	if n.StartedAt, n.Side, err = validateStartAndSide(r.StartedAt, r.Side, now); err != nil {
		return n, err
	}
	adHoc := r.Variation != nil || r.LoadKG != nil || r.TargetReps != nil || r.PauseHoldMS != nil
	if r.PrescriptionID != nil {
		if adHoc {
			return n, domain.Invalid("prescription_id", "give either prescription_id or variation, load_kg, target_reps and pause_hold_ms")
		}
		id, err := uuid.Parse(*r.PrescriptionID)
		if err != nil {
			return n, domain.Invalid("prescription_id", "prescription_id must be a UUID")
		}
		n.PrescriptionID = &id
		return n, nil
	}
	switch {
	case r.Variation == nil || *r.Variation == "" || len(*r.Variation) > 100:
		return n, domain.Invalid("variation", "variation (a slug) is required without a prescription")
	case r.LoadKG == nil:
		return n, domain.Invalid("load_kg", "load_kg is required")
	case r.TargetReps == nil:
		return n, domain.Invalid("target_reps", "target_reps is required")
	case r.PauseHoldMS == nil:
		return n, domain.Invalid("pause_hold_ms", "pause_hold_ms is required")
	}
	if err := checkLoad("load_kg", *r.LoadKG); err != nil {
		return n, err
	}
	if *r.TargetReps < 1 || *r.TargetReps > 100 {
		return n, domain.Invalid("target_reps", "target_reps must be from 1 to 100")
	}
	if *r.PauseHoldMS < 0 || *r.PauseHoldMS > 60000 {
		return n, domain.Invalid("pause_hold_ms", "pause_hold_ms must be from 0 to 60000")
	}
	n.Variation, n.LoadKG, n.TargetReps, n.PauseHoldMS = *r.Variation, *r.LoadKG, *r.TargetReps, *r.PauseHoldMS
	return n, nil
}

// checkLoad accepts 0–1000 kg in steps of 0.01.
func checkLoad(field string, kg float64) error {
	if kg < 0 || kg > 1000 || math.IsNaN(kg) {
		return domain.Invalid(field, "%s must be from 0 to 1000", field)
	}
	if cents := kg * 100; math.Abs(cents-math.Round(cents)) > 1e-6 {
		return domain.Invalid(field, "%s has at most two decimals", field)
	}
	return nil
}

func (a *API) handleCreateSet(c *fiber.Ctx) error {
	var req createSetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	n, err := req.validate(principal(c).UserID, a.now())
	if err != nil {
		return err
	}
	key, err := startKey(c, req)
	if err != nil {
		return err
	}
	// Coaches without a live dashboard open get a push instead (queued with the set).
	n.CoachWatching = func(coach uuid.UUID) bool { return a.live.Watching(c.UserContext(), coach) }
	var set domain.Set
	if key == nil {
		set, err = a.store.CreateSet(c.UserContext(), n)
	} else {
		var replayed bool
		set, replayed, err = a.store.CreateSetOnce(c.UserContext(), n, *key)
		if err == nil && replayed { // a retried start: the set it started, as it is now
			c.Set("Idempotent-Replayed", "true")
			return c.Status(fiber.StatusOK).JSON(set)
		}
	}
	if err != nil {
		return err
	}
	a.push.Wake()
	a.live.SetStarted(set) // coaches' sockets learn of it; the athlete need not wait
	return c.Status(fiber.StatusCreated).JSON(set)
}

// startKey reads the optional Idempotency-Key of POST /v1/sets: 1–255 visible
// ASCII characters, bare or as a quoted string (the IETF draft's form), kept
// with the SHA-256 of the request's fields as read (so whitespace or field
// order does not make a retry "another request").
func startKey(c *fiber.Ctx, req createSetRequest) (*postgres.StartKey, error) {
	raw := c.Request().Header.Peek("Idempotency-Key")
	if raw == nil {
		return nil, nil
	}
	key := string(raw) // a copy: fasthttp reuses the header's buffer
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	if len(key) < 1 || len(key) > 255 {
		return nil, domain.Invalid("Idempotency-Key", "Idempotency-Key is 1 to 255 visible ASCII characters")
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e || key[i] == '"' {
			return nil, domain.Invalid("Idempotency-Key", "Idempotency-Key is 1 to 255 visible ASCII characters")
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, domain.Internal(err)
	}
	sum := sha256.Sum256(body)
	return &postgres.StartKey{Key: key, RequestHash: sum[:]}, nil
}

// visibleSet finds a set the caller may see (its athlete or a linked coach).
func (a *API) visibleSet(c *fiber.Ctx) (domain.Set, error) {
	id, err := uuidParam(c, "id", "set")
	if err != nil {
		return domain.Set{}, err
	}
	p := principal(c)
	return a.store.VisibleSet(c.UserContext(), p.UserID, p.Role, id)
}

// ownSet finds a set of the calling athlete.
func (a *API) ownSet(c *fiber.Ctx) (domain.Set, error) {
	set, err := a.visibleSet(c)
	if err == nil && set.AthleteID != principal(c).UserID {
		err = domain.NotFound("set")
	}
	return set, err
}

// SetDetail is a set with its reps, the cues pushed during it, its summary
// once ended and the coaches' feedback.
type SetDetail struct {
	domain.Set
	Reps     []reptimer.RepFigures `json:"reps"`
	Cues     []live.SentCue        `json:"cues"`
	Summary  *reptimer.Summary     `json:"summary"`
	Feedback []domain.Feedback     `json:"feedback"`
}

func (a *API) setDetail(ctx context.Context, set domain.Set) (SetDetail, error) {
	d := SetDetail{Set: set}
	h, err := live.History(ctx, a.store, set)
	if err != nil {
		return d, err
	}
	d.Reps, d.Cues = h.Reps, h.Cues
	if set.Status == domain.SetEnded {
		d.Summary = &h.Summary
	}
	if d.Feedback, err = a.store.ListFeedback(ctx, set.ID); err != nil {
		return d, err
	}
	return d, nil
}

func (a *API) handleGetSet(c *fiber.Ctx) error {
	set, err := a.visibleSet(c)
	if err != nil {
		return err
	}
	d, err := a.setDetail(c.UserContext(), set)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (a *API) handleListSets(c *fiber.Ctx) error {
	page, err := pageQuery(c)
	if err != nil {
		return err
	}
	p := principal(c)
	f := postgres.SetFilter{ViewerID: p.UserID, ViewerRole: p.Role, Status: c.Query("status"), Limit: page.Limit + 1}
	if f.Status != "" && f.Status != domain.SetLive && f.Status != domain.SetEnded {
		return domain.Invalid("status", "status must be live or ended")
	}
	if id, ok, err := uuidQuery(c, "athlete_id"); err != nil {
		return err
	} else if ok {
		// An athlete the caller may not see answers 404, as for prescriptions.
		if visible, err := a.store.CanWatch(c.UserContext(), p.UserID, p.Role, id); err != nil {
			return err
		} else if !visible {
			return domain.NotFound("athlete")
		}
		f.AthleteID = &id
	}
	if page.Cursor != nil {
		t, err := time.Parse(time.RFC3339Nano, page.Cursor.Key)
		if err != nil {
			return domain.Invalid("cursor", "cursor is not one this server issued")
		}
		f.AfterStarted, f.AfterID = &t, page.Cursor.ID
	}
	sets, err := a.store.ListSets(c.UserContext(), f)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(sets, page.Limit, func(s domain.Set) (string, uuid.UUID) {
		return time.Time(s.StartedAt).Format(time.RFC3339Nano), s.ID
	}))
}

type uploadRequest struct {
	Events []uploadEvent `json:"events"`
}

type uploadEvent struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Phase   string `json:"phase"`
	At      string `json:"at"`
}

// MaxUploadEvents bounds one offline upload.
const MaxUploadEvents = 2000

func (r uploadRequest) validate(set domain.Set, now time.Time) ([]live.UploadEvent, error) {
	if len(r.Events) == 0 || len(r.Events) > MaxUploadEvents {
		return nil, domain.Invalid("events", "events must hold 1 to %d events", MaxUploadEvents)
	}
	earliest := time.Time(set.StartedAt).Add(-7 * 24 * time.Hour)
	out := make([]live.UploadEvent, 0, len(r.Events))
	for i, e := range r.Events {
		field := func(name string) string { return "events[" + itoa(i) + "]." + name }
		id, err := uuid.Parse(e.EventID)
		if err != nil || len(e.EventID) != 36 {
			return nil, domain.Invalid(field("event_id"), "%s must be a UUID", field("event_id"))
		}
		switch e.Type {
		case "rep.phase":
			switch e.Phase {
			case "up", "top", "down", "bottom":
			default:
				return nil, domain.Invalid(field("phase"), "%s must be up, top, down or bottom", field("phase"))
			}
		case "set.end":
			if e.Phase != "" {
				return nil, domain.Invalid(field("phase"), "set.end takes no phase")
			}
		default:
			return nil, domain.Invalid(field("type"), "%s must be rep.phase or set.end", field("type"))
		}
		at, err := time.Parse(time.RFC3339Nano, e.At)
		if err != nil {
			return nil, domain.Invalid(field("at"), "%s must be an RFC 3339 timestamp", field("at"))
		}
		// A phone's clock may run a little ahead: five minutes are tolerated.
		if at.Before(earliest) || at.After(now.Add(5*time.Minute)) {
			return nil, domain.Invalid(field("at"), "%s must be within the week before the set started and not in the future", field("at"))
		}
		out = append(out, live.UploadEvent{EventID: id, Type: e.Type, Phase: e.Phase, At: at})
	}
	return out, nil
}

func itoa(i int) string { return strconv.Itoa(i) }

func (a *API) handleUploadEvents(c *fiber.Ctx) error {
	set, err := a.ownSet(c)
	if err != nil {
		return err
	}
	var req uploadRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	events, err := req.validate(set, a.now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	res, err := a.live.Upload(ctx, set.ID, principal(c).UserID, events)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (a *API) handleEndSet(c *fiber.Ctx) error {
	set, err := a.ownSet(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	if _, err := a.live.End(ctx, set.ID, principal(c).UserID); err != nil {
		return err
	}
	if set, err = a.store.FindSet(ctx, set.ID); err != nil {
		return err
	}
	d, err := a.setDetail(ctx, set)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

type feedbackRequest struct {
	Text string `json:"text"`
}

func (a *API) handleSetFeedback(c *fiber.Ctx) error {
	set, err := a.visibleSet(c)
	if err != nil {
		return err
	}
	var req feedbackRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	text, err := domain.CleanText("text", req.Text, 1, 2000)
	if err != nil {
		return err
	}
	f, err := a.store.AddFeedback(c.UserContext(), set.ID, principal(c).UserID, text)
	if err != nil {
		return err
	}
	a.push.Wake() // the athlete's notice was queued with it
	return c.Status(fiber.StatusCreated).JSON(f)
}
