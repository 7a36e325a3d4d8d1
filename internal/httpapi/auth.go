package httpapi

import (
	"context"
	"net/mail"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/domain"
)

// refreshGrace is how long a rotated-out refresh token still works, for a phone
// that retried a refresh whose answer it never got.
const refreshGrace = 5 * time.Second

type registerRequest struct {
	Email       string      `json:"email"`
	Password    string      `json:"password"`
	DisplayName string      `json:"display_name"`
	Role        domain.Role `json:"role"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type tokenResponse struct {
	User         domain.User `json:"user"`
	AccessToken  string      `json:"access_token"`
	RefreshToken string      `json:"refresh_token"`
	TokenType    string      `json:"token_type"`
	ExpiresIn    int         `json:"expires_in"`
}

func cleanEmail(s string) (string, error) {
	e := domain.NormalizeEmail(s)
	if e == "" {
		return "", domain.Invalid("email", "email must not be empty")
	}
	addr, err := mail.ParseAddress(e)
	if len(e) > 254 || err != nil || addr.Address != e {
		return "", domain.Invalid("email", "email must be an address like name@example.com")
	}
	return e, nil
}

func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < auth.PasswordMinRunes {
		return domain.Invalid("password", "password must be at least %d characters", auth.PasswordMinRunes)
	}
	if len(pw) > auth.PasswordMaxBytes {
		return domain.Invalid("password", "password must be at most %d bytes", auth.PasswordMaxBytes)
	}
	return nil
}

func (r *registerRequest) validate() error {
	var err error
	if r.Email, err = cleanEmail(r.Email); err != nil {
		return err
	}
	if err := checkPassword(r.Password); err != nil {
		return err
	}
	if r.DisplayName, err = domain.CleanText("display_name", r.DisplayName, 1, 80); err != nil {
		return err
	}
	if r.Role != domain.RoleAthlete && r.Role != domain.RoleCoach {
		return domain.Invalid("role", "role must be athlete or coach")
	}
	return nil
}

func (a *API) handleRegister(c *fiber.Ctx) error {
	var req registerRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	hash, err := a.hasher.Hash(c.UserContext(), req.Password)
	if err != nil {
		return err
	}
	// The account works at once; a verification mail leaves after commit.
	u, err := a.store.RegisterUser(c.UserContext(), domain.User{Email: req.Email, DisplayName: req.DisplayName, Role: req.Role}, hash,
		a.emailToken(domain.EmailVerify, req.Email, verifyTTL))
	if err != nil {
		return err
	}
	a.kickMail()
	return a.startSession(c, fiber.StatusCreated, u, hash)
}

// startSession signs u in; passwordHash is the hash the password was checked
// against (no session starts if it changed meanwhile).
func (a *API) startSession(c *fiber.Ctx, status int, u domain.User, passwordHash string) error {
	family := uuid.New()
	refresh, hash := auth.NewOpaqueToken()
	if err := a.store.StartSession(c.UserContext(), u.ID, family, passwordHash, hash, a.cfg.RefreshTTL); err != nil {
		return err
	}
	return a.sendTokens(c, status, u, family, refresh)
}

func (a *API) sendTokens(c *fiber.Ctx, status int, u domain.User, family uuid.UUID, refresh string) error {
	access, err := a.tokens.Issue(u.ID, u.Role, family)
	if err != nil {
		return domain.Internal(err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(tokenResponse{
		User: u, AccessToken: access, RefreshToken: refresh,
		TokenType: "Bearer", ExpiresIn: int(a.tokens.TTL().Seconds()),
	})
}

var errBadLogin = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid email or password"}

func tooManySignIns(wait time.Duration) error {
	return &domain.Error{Code: domain.CodeTooManyRequests, Message: "too many failed sign-ins, try again later", RetryAfter: wait}
}

// handleLogin reserves an attempt per account and per address before hashing
// anything (auth.Throttle): a reserved attempt counts as a failure unless the
// password is right, so any number of concurrent guesses gets at most the free
// failures through. A sign-in to an account with no recent failure waits for a
// hashing slot ahead of sign-ups and of guesses at accounts under attack.
func (a *API) handleLogin(c *fiber.Ctx) error {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	email := domain.NormalizeEmail(req.Email)
	if email == "" || len(email) > 254 {
		return domain.Invalid("email", "email must be an address like name@example.com")
	}
	if req.Password == "" || len(req.Password) > auth.PasswordMaxBytes {
		return errBadLogin
	}
	var u domain.User
	var hash string
	ok, err := a.checkPassword(c, email, req.Password, func(ctx context.Context) (string, error) {
		var err error
		u, hash, err = a.store.FindUserForLogin(ctx, email)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			err = nil // an unknown email is checked against a dummy hash: same answer, same time
		}
		return hash, err
	})
	if err != nil {
		return err
	}
	if !ok {
		return errBadLogin
	}
	return a.startSession(c, fiber.StatusOK, u, hash)
}

// checkPassword checks a password of the account under email, counted by the
// sign-in throttles (per account and per address) before anything is looked up
// or hashed: any burst of guesses gets at most the free failures through.
// lookup finds the hash to check against. false: a wrong password, which stays
// counted; a success clears the account's count and counts for nothing at the
// address; anything that was not a guess (a busy hasher, the database) is
// taken back.
func (a *API) checkPassword(c *fiber.Ctx, email, password string, lookup func(context.Context) (string, error)) (bool, error) {
	ctx := c.UserContext()
	attempts, err := a.reserveAttempts(ctx, tooManySignIns,
		throttled{a.accountLimiter, "account:" + email}, throttled{a.addressLimiter, "address:" + a.clientKey(c)})
	if err != nil {
		return false, err
	}
	account, address := attempts[0], attempts[1]
	hash, err := lookup(ctx)
	if err != nil {
		a.releaseAttempts(ctx, account, address)
		return false, err
	}
	priority := auth.Suspect
	if account.Failures == 1 {
		priority = auth.SignIn
	}
	ok, err := a.hasher.Verify(ctx, priority, hash, password)
	if err != nil { // busy (503): not a guess
		a.releaseAttempts(ctx, account, address)
		return false, err
	}
	if !ok {
		return false, nil // both reserved attempts stay counted as failures
	}
	if err := account.Succeed(ctx); err != nil {
		a.log.Warn("clearing the sign-in throttle failed", "err", err)
	}
	a.releaseAttempts(ctx, address)
	return true, nil
}

// throttled names a throttle and the key an attempt is counted under.
type throttled struct {
	throttle *auth.Throttle
	key      string
}

// reserveAttempts reserves an attempt under each throttle in turn, all or none:
// when one refuses (tooMany with its wait) or fails, those already reserved are
// taken back.
func (a *API) reserveAttempts(ctx context.Context, tooMany func(time.Duration) error, ts ...throttled) ([]*auth.Attempt, error) {
	attempts := make([]*auth.Attempt, 0, len(ts))
	for _, t := range ts {
		at, wait, err := t.throttle.Reserve(ctx, t.key)
		if err == nil && wait > 0 {
			err = tooMany(wait)
		}
		if err != nil {
			a.releaseAttempts(ctx, attempts...)
			return nil, err
		}
		attempts = append(attempts, at)
	}
	return attempts, nil
}

// releaseAttempts takes back reserved attempts that were not guesses. If the
// database refuses, the attempt stays counted: logged, not fatal.
func (a *API) releaseAttempts(ctx context.Context, attempts ...*auth.Attempt) {
	for _, at := range attempts {
		if err := at.Release(ctx); err != nil {
			a.log.Warn("releasing a throttle attempt failed", "err", err)
		}
	}
}

func (r *refreshRequest) validate() error {
	if r.RefreshToken == "" || len(r.RefreshToken) > 128 {
		return domain.Invalid("refresh_token", "refresh_token is missing or malformed")
	}
	return nil
}

func (a *API) handleRefresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	// The successor is derived from the token: a retry gets the same one.
	refresh, hash := a.tokens.Successor(req.RefreshToken)
	u, family, err := a.store.RotateRefreshToken(c.UserContext(), auth.HashOpaqueToken(req.RefreshToken), hash, refreshGrace, a.cfg.RefreshTTL)
	if err != nil {
		return err
	}
	return a.sendTokens(c, fiber.StatusOK, u, family, refresh)
}

func (a *API) handleLogout(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	if err := a.store.RevokeSession(c.UserContext(), auth.HashOpaqueToken(req.RefreshToken)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) handleMe(c *fiber.Ctx) error {
	u, err := a.store.FindAccount(c.UserContext(), principal(c).UserID) // with units and email_verified
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return domain.Errorf(domain.CodeUnauthorized, "the account no longer exists or is disabled")
		}
		return err
	}
	return c.JSON(u)
}
