package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/strictjson"
)

// decode reads a JSON body strictly into v. The body is read raw: inflateBody
// has already decoded any Content-Encoding within the size limit, and c.Body()
// would inflate without one.
func decode(c *fiber.Ctx, v any) error {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(c.Get(fiber.HeaderContentType), ";", 2)[0]))
	if ct != fiber.MIMEApplicationJSON {
		return domain.Errorf(domain.CodeUnsupportedMediaType, "the body must be application/json")
	}
	return strictjson.Decode(c.BodyRaw(), v)
}

const principalKey = "principal"

// authenticate requires a valid bearer access token whose session is still
// active: after a logout, a refresh-token reuse or an account being disabled,
// the session's access tokens stop working within sessionRecheck.
func (a *API) authenticate(c *fiber.Ctx) error {
	p, err := a.bearer(c)
	if err != nil {
		return err
	}
	if err := a.sessions.check(c.UserContext(), p.SessionID); err != nil {
		return err
	}
	c.Locals(principalKey, p)
	return c.Next()
}

func (a *API) bearer(c *fiber.Ctx) (auth.Principal, error) {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return auth.Principal{}, domain.Errorf(domain.CodeUnauthorized, "a bearer access token is required")
	}
	return a.tokens.Parse(strings.TrimSpace(token))
}

// only lets the given roles through; other signed-in roles get 403.
func only(roles ...domain.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := principal(c)
		for _, r := range roles {
			if p.Role == r {
				return c.Next()
			}
		}
		return domain.Errorf(domain.CodeForbidden, "this endpoint is not available to the %s role", p.Role)
	}
}

func principal(c *fiber.Ctx) auth.Principal {
	p, _ := c.Locals(principalKey).(auth.Principal)
	return p
}

// uuidParam parses a path parameter; a malformed id is simply not found.
func uuidParam(c *fiber.Ctx, name, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Params(name))
	if err != nil {
		return uuid.Nil, domain.NotFound(what)
	}
	return id, nil
}

// uuidQuery parses an optional query parameter.
func uuidQuery(c *fiber.Ctx, name string) (uuid.UUID, bool, error) {
	v := c.Query(name)
	if v == "" {
		return uuid.Nil, false, nil
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, false, domain.Invalid(name, "%s must be a UUID", name)
	}
	return id, true, nil
}

// dateQuery parses an optional YYYY-MM-DD query parameter.
func dateQuery(c *fiber.Ctx, name string) (*domain.Date, error) {
	v := c.Query(name)
	if v == "" {
		return nil, nil
	}
	d, err := domain.ParseDate(name, v)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Page is a request for one page of a list.
type Page struct {
	Limit  int
	Cursor *Cursor
}

// Cursor is the position after the last item of a page: its sort key and, where
// the key alone is not unique, its id.
type Cursor struct {
	Key string    `json:"k"`
	ID  uuid.UUID `json:"i"`
}

const (
	defaultLimit = 50
	maxLimit     = 200
)

// pageQuery reads ?limit= (clamped to 1..200) and ?cursor=.
func pageQuery(c *fiber.Ctx) (Page, error) {
	p := Page{Limit: defaultLimit}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		var numErr *strconv.NumError
		switch {
		case errors.As(err, &numErr) && numErr.Err == strconv.ErrRange && !strings.HasPrefix(v, "-"):
			n = maxLimit // clamped like any other large number
		case err != nil:
			return p, domain.Invalid("limit", "limit must be an integer")
		}
		p.Limit = min(max(n, 1), maxLimit)
	}
	if v := c.Query("cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		var cur Cursor
		if err != nil || len(raw) > 512 || json.Unmarshal(raw, &cur) != nil || strings.ContainsRune(cur.Key, 0) {
			return p, domain.Invalid("cursor", "cursor is not one this server issued")
		}
		p.Cursor = &cur
	}
	return p, nil
}

// nextCursor encodes the position after the last item of a full page.
func nextCursor(key string, id uuid.UUID) *string {
	b, _ := json.Marshal(Cursor{Key: key, ID: id})
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

// List is the shape of every list response.
type List[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// pageOf builds a list response from items fetched with limit+1: the extra item
// only tells that another page exists, so the last page has no cursor.
func pageOf[T any](items []T, limit int, key func(T) (string, uuid.UUID)) List[T] {
	if items == nil {
		items = []T{}
	}
	if len(items) <= limit {
		return List[T]{Items: items}
	}
	items = items[:limit]
	k, id := key(items[limit-1])
	return List[T]{Items: items, NextCursor: nextCursor(k, id)}
}
