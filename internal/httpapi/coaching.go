package httpapi

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

const (
	// inviteTTL is how long an invite code can be used.
	inviteTTL = 7 * 24 * time.Hour
	// maxOutstandingInvites bounds a coach's unused, unexpired invites, so that a
	// leaked or scripted coach account cannot fill the code space.
	maxOutstandingInvites = 20
	// scheduleHorizonYears is how far before or after today a prescription may be scheduled.
	scheduleHorizonYears = 2
)

// errUnknownInvite is the one answer for a code that does not exist, was used
// or has expired: telling them apart would help a guesser.
var errUnknownInvite = domain.NotFound("invite code")

func (a *API) handleCreateInvite(c *fiber.Ctx) error {
	// The endpoint takes no input; a body, if any, must be an empty object (a
	// pointer, so that a bare null is told apart from {}).
	if len(c.BodyRaw()) > 0 {
		var empty *struct{}
		if err := decode(c, &empty); err != nil {
			return err
		}
		if empty == nil {
			return domain.Invalid("", "the body must be empty or an empty JSON object")
		}
	}
	inv, err := a.store.CreateInvite(c.UserContext(), principal(c).UserID, inviteTTL, maxOutstandingInvites)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(inv)
}

type coachLinkRequest struct {
	Code string `json:"code"`
}

func (r *coachLinkRequest) validate() error {
	if strings.TrimSpace(r.Code) == "" {
		return domain.Invalid("code", "code must not be empty")
	}
	return nil
}

type coachLinkResponse struct {
	Coach domain.CoachRef `json:"coach"`
}

func (a *API) handleRedeemInvite(c *fiber.Ctx) error {
	var req coachLinkRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	athleteID := principal(c).UserID
	key, addressKey := athleteID.String(), "address:"+a.clientKey(c)
	ctx := c.UserContext()
	// Reserved before the lookup: concurrent guesses are counted one by one.
	attempts, err := a.reserveAttempts(ctx, tooManyInviteGuesses,
		throttled{a.inviteLimiter, key}, throttled{a.inviteAddressLimiter, addressKey})
	if err != nil {
		return err
	}
	attempt, address := attempts[0], attempts[1]
	// A code that cannot be one we issued is just as unknown as a well-formed miss.
	err = errUnknownInvite
	var coach domain.CoachRef
	if code, ok := domain.NormalizeInviteCode(req.Code); ok {
		coach, err = a.store.RedeemInvite(ctx, athleteID, code)
	}
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return errUnknownInvite // the reserved attempt stays counted as a failure
	}
	if err != nil { // a real code, already linked (409), or the database: not a guess
		a.releaseAttempts(ctx, attempt, address)
		return err
	}
	if err := attempt.Succeed(ctx); err != nil {
		a.log.Warn("clearing the invite throttle failed", "err", err)
	}
	a.releaseAttempts(ctx, address) // a success at an address clears nothing there, and counts for nothing
	return c.Status(fiber.StatusCreated).JSON(coachLinkResponse{Coach: coach})
}

func tooManyInviteGuesses(wait time.Duration) error {
	return &domain.Error{Code: domain.CodeTooManyRequests, Message: "too many wrong invite codes, try again later", RetryAfter: wait}
}

func (a *API) handleListAthletes(c *fiber.Ctx) error {
	return listByName(c, a.store.ListLinkedAthletes, func(a domain.LinkedAthlete) (string, uuid.UUID) {
		return a.DisplayName, a.ID
	})
}

// listByName answers a page of the caller's people (linked athletes or
// coaches), kept in (display name, id) order.
func listByName[T any](c *fiber.Ctx, list func(ctx context.Context, userID uuid.UUID, after *postgres.Keyset[string], limit int) ([]T, error),
	key func(T) (string, uuid.UUID)) error {
	page, err := pageQuery(c)
	if err != nil {
		return err
	}
	var after *postgres.Keyset[string]
	if page.Cursor != nil {
		after = &postgres.Keyset[string]{Key: page.Cursor.Key, ID: page.Cursor.ID}
	}
	items, err := list(c.UserContext(), principal(c).UserID, after, page.Limit+1)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(items, page.Limit, key))
}

func (a *API) handleUnlinkAthlete(c *fiber.Ctx) error {
	athleteID, err := uuidParam(c, "athlete_id", "athlete")
	if err != nil {
		return err
	}
	coachID := principal(c).UserID
	if err := a.store.UnlinkAthlete(c.UserContext(), coachID, athleteID); err != nil {
		return err
	}
	a.live.Unlinked(coachID, athleteID) // live watching stops at once
	return c.SendStatus(fiber.StatusNoContent)
}

type prescriptionRequest struct {
	AthleteID   string   `json:"athlete_id"`
	Variation   string   `json:"variation"`
	Sets        int      `json:"sets"`
	Reps        int      `json:"reps"`
	LoadKg      *float64 `json:"load_kg"`       // a pointer: 0 kg is valid, a missing load is not
	PauseHoldMs *int     `json:"pause_hold_ms"` // likewise
	ScheduledOn string   `json:"scheduled_on"`
	Notes       string   `json:"notes"`
}

// validate checks the request and turns it into a prescription (without its
// coach, id and creation time). today bounds scheduled_on.
func (r *prescriptionRequest) validate(today domain.Date) (domain.Prescription, error) {
	var p domain.Prescription
	var err error
	if p.AthleteID, err = uuid.Parse(r.AthleteID); err != nil {
		return p, domain.Invalid("athlete_id", "athlete_id must be a UUID")
	}
	if r.Variation == "" {
		return p, domain.Invalid("variation", "variation must not be empty")
	}
	p.Variation = r.Variation
	if r.Sets < 1 || r.Sets > 20 {
		return p, domain.Invalid("sets", "sets must be between 1 and 20")
	}
	p.Sets = r.Sets
	if r.Reps < 1 || r.Reps > 100 {
		return p, domain.Invalid("reps", "reps must be between 1 and 100")
	}
	p.Reps = r.Reps
	if r.LoadKg == nil {
		return p, domain.Invalid("load_kg", "load_kg is required")
	}
	load := *r.LoadKg
	if load < 0 || load > 1000 {
		return p, domain.Invalid("load_kg", "load_kg must be between 0 and 1000")
	}
	// The column holds two decimals; refuse what it would silently round.
	if math.Round(load*100)/100 != load {
		return p, domain.Invalid("load_kg", "load_kg must have at most 2 decimals")
	}
	p.LoadKg = load
	if r.PauseHoldMs == nil {
		return p, domain.Invalid("pause_hold_ms", "pause_hold_ms is required")
	}
	if *r.PauseHoldMs < 0 || *r.PauseHoldMs > 60000 {
		return p, domain.Invalid("pause_hold_ms", "pause_hold_ms must be between 0 and 60000")
	}
	p.PauseHoldMs = *r.PauseHoldMs
	if p.ScheduledOn, err = domain.ParseDate("scheduled_on", r.ScheduledOn); err != nil {
		return p, err
	}
	earliest, latest := today.AddDate(-scheduleHorizonYears, 0, 0), today.AddDate(scheduleHorizonYears, 0, 0)
	if p.ScheduledOn.Before(earliest) || p.ScheduledOn.After(latest) {
		return p, domain.Invalid("scheduled_on", "scheduled_on must be between %s and %s", earliest, latest)
	}
	if p.Notes, err = domain.CleanText("notes", r.Notes, 0, 1000); err != nil {
		return p, err
	}
	return p, nil
}

func (a *API) handleCreatePrescription(c *fiber.Ctx) error {
	var req prescriptionRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	p, err := req.validate(domain.DateOf(a.now().UTC()))
	if err != nil {
		return err
	}
	p.CoachID = principal(c).UserID
	p, err = a.store.CreatePrescription(c.UserContext(), p)
	if err != nil {
		return err
	}
	a.push.Wake() // the athlete's notice was queued with it
	c.Set(fiber.HeaderETag, versionETag(p.Version))
	return c.Status(fiber.StatusCreated).JSON(p)
}

// handleListPrescriptions lists what the caller may see: an athlete its own, a
// coach those of its linked athletes. Naming an athlete the caller may not see
// answers 404, as if there were no such athlete.
func (a *API) handleListPrescriptions(c *fiber.Ctx) error {
	me := principal(c)
	page, err := pageQuery(c)
	if err != nil {
		return err
	}
	f := postgres.PrescriptionFilter{ViewerID: me.UserID, Limit: page.Limit + 1}
	if page.Cursor != nil {
		d, err := domain.ParseDate("cursor", page.Cursor.Key)
		if err != nil {
			return domain.Invalid("cursor", "cursor is not one this server issued")
		}
		f.After = &postgres.Keyset[domain.Date]{Key: d, ID: page.Cursor.ID}
	}
	if f.From, err = dateQuery(c, "from"); err != nil {
		return err
	}
	if f.To, err = dateQuery(c, "to"); err != nil {
		return err
	}
	if f.From != nil && f.To != nil && f.From.After(*f.To) {
		return domain.Invalid("to", "to must not be before from")
	}
	athleteID, given, err := uuidQuery(c, "athlete_id")
	if err != nil {
		return err
	}
	if given {
		visible := athleteID == me.UserID
		if me.Role == domain.RoleCoach {
			if visible, err = a.store.CoachLinked(c.UserContext(), me.UserID, athleteID); err != nil {
				return err
			}
		}
		if !visible {
			return domain.NotFound("athlete")
		}
		f.AthleteID = &athleteID
	}
	list, err := a.store.ListPrescriptions(c.UserContext(), f)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(list, page.Limit, func(p domain.Prescription) (string, uuid.UUID) {
		return p.ScheduledOn.String(), p.ID
	}))
}

func (a *API) handleGetPrescription(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "prescription")
	if err != nil {
		return err
	}
	p, err := a.store.FindPrescription(c.UserContext(), principal(c).UserID, id)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(p.Version))
	return c.JSON(p)
}
