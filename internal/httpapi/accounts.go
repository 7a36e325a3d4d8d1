package httpapi

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// Lifetimes of the links mail carries.
const (
	verifyTTL      = 48 * time.Hour
	emailChangeTTL = 24 * time.Hour
	resetTTL       = 30 * time.Minute
	// freshLogin is how recent a sign-in must be for DELETE /v1/me without a password.
	freshLogin = 5 * time.Minute
)

// Outbox is told when mail was committed, so that it is sent at once rather
// than at the next poll (internal/mail.Dispatcher).
type Outbox interface{ Kick() }

func (a *API) kickMail() {
	if a.outbox != nil {
		a.outbox.Kick()
	}
}

// emailToken makes a single-use token and the mail carrying its link:
// REPCUE_PUBLIC_URL + path + ?token=…, where the app (or a page of it) posts the
// token to the API.
func (a *API) emailToken(purpose domain.EmailPurpose, to string, ttl time.Duration) postgres.EmailToken {
	token, hash := auth.NewOpaqueToken()
	var subject, intro, path string
	switch purpose {
	case domain.EmailVerify:
		subject, path = "Confirm your email for repcue", "/verify-email"
		intro = "Welcome to repcue. Confirm that this is your email address by opening this link:"
	case domain.EmailChange:
		subject, path = "Confirm your new email for repcue", "/verify-email"
		intro = "You asked to use this address for your repcue account. Confirm it by opening this link:"
	case domain.EmailReset:
		subject, path = "Reset your repcue password", "/reset-password"
		intro = "Someone (hopefully you) asked to reset the password of your repcue account. Choose a new one here:"
	}
	link := a.cfg.PublicURL + path + "?token=" + url.QueryEscape(token)
	body := fmt.Sprintf("%s\n\n%s\n\nOr enter this code in the app: %s\n\nThe link works once, for %s. If you did not ask for this, ignore this mail.\n",
		intro, link, token, humanDuration(ttl))
	return postgres.EmailToken{
		Hash: hash, Purpose: purpose, Email: to, TTL: ttl,
		Mail: postgres.Mail{Kind: string(purpose), To: to, Subject: subject, Body: body, TTL: ttl},
	}
}

func humanDuration(d time.Duration) string {
	if d >= time.Hour {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes()))
}

var errWrongPassword = &domain.Error{Code: domain.CodeForbidden, Message: "the password is wrong"}

// checkOwnPassword checks the signed-in user's password (field names it in the
// request), throttled exactly like a sign-in: the same per-account count (so a
// stolen access token guesses no faster than a login) and the per-address
// count. It returns the hash the password was checked against.
func (a *API) checkOwnPassword(c *fiber.Ctx, field, password string) (domain.User, string, error) {
	ctx := c.UserContext()
	u, hash, err := a.store.FindUserPassword(ctx, principal(c).UserID)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return u, "", domain.Errorf(domain.CodeUnauthorized, "the account no longer exists or is disabled")
	}
	if err != nil {
		return u, "", err
	}
	if password == "" || len(password) > auth.PasswordMaxBytes {
		return u, "", &domain.Error{Code: domain.CodeForbidden, Field: field, Message: errWrongPassword.Message}
	}
	ok, err := a.checkPassword(c, u.Email, password, func(context.Context) (string, error) { return hash, nil })
	if err != nil {
		return u, "", err
	}
	if !ok {
		return u, "", &domain.Error{Code: domain.CodeForbidden, Field: field, Message: errWrongPassword.Message}
	}
	return u, hash, nil
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// handleChangePassword sets a new password; every other session of the
// account ends (the caller's goes on).
func (a *API) handleChangePassword(c *fiber.Ctx) error {
	var req changePasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := checkNewPassword("new_password", req.NewPassword); err != nil {
		return err
	}
	_, oldHash, err := a.checkOwnPassword(c, "current_password", req.CurrentPassword)
	if err != nil {
		return err
	}
	newHash, err := a.hasher.Hash(c.UserContext(), req.NewPassword)
	if err != nil {
		return err
	}
	if err := a.store.ChangePassword(c.UserContext(), principal(c).UserID, principal(c).SessionID, oldHash, newHash); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// checkNewPassword applies the sign-up rules to a new password named field.
func checkNewPassword(field, pw string) error {
	err := checkPassword(pw)
	if e, ok := err.(*domain.Error); ok {
		return &domain.Error{Code: e.Code, Field: field, Message: strings.Replace(e.Message, "password", field, 1)}
	}
	return err
}

type changeEmailRequest struct {
	Password string `json:"password"`
	NewEmail string `json:"new_email"`
}

type statusResponse struct {
	Status string `json:"status"`
}

// handleChangeEmail sends a confirmation link to the new address; the account
// moves to it when the link is used (POST /v1/auth/verify-email).
func (a *API) handleChangeEmail(c *fiber.Ctx) error {
	var req changeEmailRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	email, err := cleanEmail(req.NewEmail)
	if err != nil {
		return domain.Invalid("new_email", "new_email must be an address like name@example.com")
	}
	_, hash, err := a.checkOwnPassword(c, "password", req.Password)
	if err != nil {
		return err
	}
	if err := a.store.RequestEmailChange(c.UserContext(), principal(c).UserID, hash, a.emailToken(domain.EmailChange, email, emailChangeTTL)); err != nil {
		return err
	}
	a.kickMail()
	return c.Status(fiber.StatusAccepted).JSON(statusResponse{Status: "a confirmation link was sent to the new address"})
}

// handleResendVerification sends the sign-up address a new verification link.
func (a *API) handleResendVerification(c *fiber.Ctx) error {
	if err := emptyBody(c); err != nil {
		return err
	}
	me := principal(c)
	ctx := c.UserContext()
	attempt, wait, err := a.verifyLimiter.Reserve(ctx, me.UserID.String())
	if err != nil {
		return err
	}
	if wait > 0 {
		return &domain.Error{Code: domain.CodeTooManyRequests, Message: "too many verification mails, try again later", RetryAfter: wait}
	}
	err = a.store.ResendVerification(ctx, me.UserID, func(email string) postgres.EmailToken {
		return a.emailToken(domain.EmailVerify, email, verifyTTL)
	})
	if err != nil {
		a.releaseAttempts(ctx, attempt)
		return err
	}
	a.kickMail()
	return c.Status(fiber.StatusAccepted).JSON(statusResponse{Status: "a verification link was sent"})
}

// emptyBody accepts no body or an empty JSON object.
func emptyBody(c *fiber.Ctx) error {
	if len(c.BodyRaw()) == 0 {
		return nil
	}
	var empty *struct{}
	if err := decode(c, &empty); err != nil {
		return err
	}
	if empty == nil {
		return domain.Invalid("", "the body must be empty or an empty JSON object")
	}
	return nil
}

type tokenRequest struct {
	Token string `json:"token"`
}

func (r tokenRequest) hash() ([]byte, error) {
	if r.Token == "" || len(r.Token) > 128 {
		return nil, domain.Invalid("token", "token is missing or malformed")
	}
	return auth.HashOpaqueToken(r.Token), nil
}

// handleVerifyEmail uses a link from a verification or email-change mail.
func (a *API) handleVerifyEmail(c *fiber.Ctx) error {
	var req tokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	hash, err := req.hash()
	if err != nil {
		return err
	}
	if err := a.store.ConfirmEmail(c.UserContext(), hash); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type resetRequest struct {
	Email string `json:"email"`
}

// resetAccepted is the one answer to a reset request, whether or not a mail goes out.
var resetAccepted = statusResponse{Status: "if an account with a verified email has this address, a reset link is on its way"}

// handlePasswordReset answers 202 alike whether or not the address has an
// account, doing the same work: one INSERT of a reset mail into the outbox;
// the dispatcher looks the account up when it delivers, and drops the mail
// when no enabled account with a verified email has the address. Requests are
// counted per address and per client, found or not.
func (a *API) handlePasswordReset(c *fiber.Ctx) error {
	var req resetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	email, err := cleanEmail(req.Email)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := a.reserveAttempts(ctx, tooManyResets,
		throttled{a.resetEmailLimiter, "email:" + email}, throttled{a.resetAddressLimiter, "address:" + a.clientKey(c)}); err != nil {
		return err
	}
	if err := a.store.RequestPasswordReset(ctx, email, a.emailToken(domain.EmailReset, email, resetTTL)); err != nil {
		return err
	}
	a.kickMail()
	return c.Status(fiber.StatusAccepted).JSON(resetAccepted)
}

func tooManyResets(wait time.Duration) error {
	return &domain.Error{Code: domain.CodeTooManyRequests, Message: "too many reset requests, try again later", RetryAfter: wait}
}

type resetConfirmRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
}

// handlePasswordResetConfirm sets the new password and ends every session.
func (a *API) handlePasswordResetConfirm(c *fiber.Ctx) error {
	var req resetConfirmRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	hash, err := tokenRequest{Token: req.Token}.hash()
	if err != nil {
		return err
	}
	if err := checkNewPassword("new_password", req.NewPassword); err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := a.store.PeekResetToken(ctx, hash); err != nil { // a bogus token costs no hash
		return err
	}
	pw, err := a.hasher.Hash(ctx, req.NewPassword)
	if err != nil {
		return err
	}
	if err := a.store.ResetPassword(ctx, hash, pw); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type deleteMeRequest struct {
	Password *string `json:"password"`
}

// handleDeleteMe deletes the caller's account (see postgres.DeleteAccount for
// what goes and what stays as an anonymous tombstone). It needs the password,
// or a sign-in of the last 5 minutes. A live set is ended first; coaches stop
// watching at once and the account's sockets close with 4001.
func (a *API) handleDeleteMe(c *fiber.Ctx) error {
	var req deleteMeRequest
	if len(c.BodyRaw()) > 0 {
		if err := decode(c, &req); err != nil {
			return err
		}
	}
	me := principal(c)
	ctx := c.UserContext()
	hash := ""
	if req.Password != nil {
		var err error
		if _, hash, err = a.checkOwnPassword(c, "password", *req.Password); err != nil {
			return err
		}
	} else {
		started, err := a.store.SessionStartedAt(ctx, me.SessionID)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return errSessionEnded
		}
		if err != nil {
			return err
		}
		if a.now().Sub(started) > freshLogin {
			return &domain.Error{Code: domain.CodeForbidden, Field: "password",
				Message: "confirm with your password, or sign in again and delete within 5 minutes"}
		}
	}
	if me.Role == domain.RoleAthlete {
		set, err := a.store.LiveSetOf(ctx, me.UserID)
		if err != nil {
			return err
		}
		if set != nil {
			if _, err := a.live.End(ctx, *set, me.UserID); err != nil && domain.ErrorCode(err) != domain.CodeConflict {
				return err
			}
		}
	}
	deleted, err := a.store.DeleteAccount(ctx, me.UserID, hash)
	if err != nil {
		return err
	}
	for _, l := range deleted.Links {
		a.live.Unlinked(l.CoachID, l.AthleteID)
	}
	a.live.SignedOut(me.UserID)
	a.log.Info("account deleted", "user_id", me.UserID.String())
	return c.SendStatus(fiber.StatusNoContent)
}

// accountExport is everything of the caller's own: GET /v1/me/export.
type accountExport struct {
	ExportedAt    domain.Time             `json:"exported_at"`
	Profile       domain.Account          `json:"profile"`
	Links         []postgres.ExportLink   `json:"links"`
	Invites       []postgres.ExportInvite `json:"invites"`
	Prescriptions []domain.Prescription   `json:"prescriptions"`
	Sets          []SetDetail             `json:"sets"`
	FeedbackGiven []domain.Feedback       `json:"feedback_given"`
}

func (a *API) handleExportMe(c *fiber.Ctx) error {
	ctx := c.UserContext()
	me := principal(c)
	acc, err := a.store.FindAccount(ctx, me.UserID)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return domain.Errorf(domain.CodeUnauthorized, "the account no longer exists or is disabled")
	}
	if err != nil {
		return err
	}
	out := accountExport{ExportedAt: domain.Time(a.now()), Profile: acc, Sets: []SetDetail{}}
	if out.Links, err = a.store.ExportLinks(ctx, me.UserID); err != nil {
		return err
	}
	if out.Invites, err = a.store.ExportInvites(ctx, me.UserID); err != nil {
		return err
	}
	if out.Prescriptions, err = a.store.ExportPrescriptions(ctx, me.UserID); err != nil {
		return err
	}
	sets, err := a.store.ExportSets(ctx, me.UserID)
	if err != nil {
		return err
	}
	for _, s := range sets {
		d, err := a.setDetail(ctx, s)
		if err != nil {
			return err
		}
		out.Sets = append(out.Sets, d)
	}
	if out.FeedbackGiven, err = a.store.ExportFeedbackBy(ctx, me.UserID); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="repcue-export.json"`)
	return c.JSON(out)
}

func (a *API) handleListCoaches(c *fiber.Ctx) error {
	return listByName(c, a.store.ListLinkedCoaches, func(l domain.LinkedCoach) (string, uuid.UUID) {
		return l.DisplayName, l.ID
	})
}

// handleLeaveCoach ends the caller's link to a coach; the coach stops watching
// the athlete's sets at once, as when the coach unlinks.
func (a *API) handleLeaveCoach(c *fiber.Ctx) error {
	coachID, err := uuidParam(c, "coach_id", "coach")
	if err != nil {
		return err
	}
	athleteID := principal(c).UserID
	err = a.store.UnlinkAthlete(c.UserContext(), coachID, athleteID)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return domain.NotFound("coach")
	}
	if err != nil {
		return err
	}
	a.live.Unlinked(coachID, athleteID)
	return c.SendStatus(fiber.StatusNoContent)
}

type inviteList struct {
	Items      []domain.OutstandingInvite `json:"items"`
	NextCursor *string                    `json:"next_cursor"`
}

// handleListInvites lists the caller's unused, unexpired invites (at most 20
// exist, so there is one page).
func (a *API) handleListInvites(c *fiber.Ctx) error {
	list, err := a.store.ListOutstandingInvites(c.UserContext(), principal(c).UserID)
	if err != nil {
		return err
	}
	if list == nil {
		list = []domain.OutstandingInvite{}
	}
	return c.JSON(inviteList{Items: list})
}

func (a *API) handleRevokeInvite(c *fiber.Ctx) error {
	code, ok := domain.NormalizeInviteCode(c.Params("code"))
	if !ok {
		return domain.NotFound("invite")
	}
	if err := a.store.RevokeInvite(c.UserContext(), principal(c).UserID, code); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type prescriptionPatchRequest struct {
	Variation   optional[string]  `json:"variation"`
	Sets        optional[int]     `json:"sets"`
	Reps        optional[int]     `json:"reps"`
	LoadKg      optional[float64] `json:"load_kg"`
	PauseHoldMs optional[int]     `json:"pause_hold_ms"`
	ScheduledOn optional[string]  `json:"scheduled_on"`
	Notes       optional[string]  `json:"notes"`
}

// validate applies the rules of a new prescription to each field given.
func (r prescriptionPatchRequest) validate(today domain.Date) (postgres.PrescriptionPatch, error) {
	var p postgres.PrescriptionPatch
	var err error
	if p.Variation, err = r.Variation.ptr("variation"); err != nil {
		return p, err
	}
	if p.Sets, err = r.Sets.ptr("sets"); err != nil {
		return p, err
	}
	if p.Reps, err = r.Reps.ptr("reps"); err != nil {
		return p, err
	}
	if p.LoadKg, err = r.LoadKg.ptr("load_kg"); err != nil {
		return p, err
	}
	if p.PauseHoldMs, err = r.PauseHoldMs.ptr("pause_hold_ms"); err != nil {
		return p, err
	}
	scheduled, err := r.ScheduledOn.ptr("scheduled_on")
	if err != nil {
		return p, err
	}
	if p.Notes, err = r.Notes.ptr("notes"); err != nil {
		return p, err
	}
	if p.Variation == nil && p.Sets == nil && p.Reps == nil && p.LoadKg == nil && p.PauseHoldMs == nil &&
		scheduled == nil && p.Notes == nil {
		return p, domain.Invalid("", "send at least one field to change")
	}
	// The full check of a new prescription, over placeholders for what is not changed.
	full := prescriptionRequest{AthleteID: uuid.Nil.String(), Variation: "unchanged", Sets: 1, Reps: 1,
		LoadKg: new(float64), PauseHoldMs: new(int), ScheduledOn: today.String()}
	if p.Variation != nil {
		full.Variation = *p.Variation
	}
	if p.Sets != nil {
		full.Sets = *p.Sets
	}
	if p.Reps != nil {
		full.Reps = *p.Reps
	}
	if p.LoadKg != nil {
		full.LoadKg = p.LoadKg
	}
	if p.PauseHoldMs != nil {
		full.PauseHoldMs = p.PauseHoldMs
	}
	if scheduled != nil {
		full.ScheduledOn = *scheduled
	}
	if p.Notes != nil {
		full.Notes = *p.Notes
	}
	checked, err := full.validate(today)
	if err != nil {
		return p, err
	}
	if scheduled != nil {
		p.ScheduledOn = &checked.ScheduledOn
	}
	if p.Notes != nil {
		p.Notes = &checked.Notes
	}
	return p, nil
}

// handleUpdatePrescription edits a prescription its caller wrote, with
// If-Match, until a set is started from it.
func (a *API) handleUpdatePrescription(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "prescription")
	if err != nil {
		return err
	}
	match, err := ifMatch(c, true)
	if err != nil {
		return err
	}
	var req prescriptionPatchRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	patch, err := req.validate(domain.DateOf(a.now().UTC()))
	if err != nil {
		return err
	}
	p, err := a.store.UpdatePrescription(c.UserContext(), principal(c).UserID, id, match, patch)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(p.Version))
	return c.JSON(p)
}

func (a *API) handleDeletePrescription(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "prescription")
	if err != nil {
		return err
	}
	match, err := ifMatch(c, true)
	if err != nil {
		return err
	}
	if err := a.store.DeletePrescription(c.UserContext(), principal(c).UserID, id, match); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
