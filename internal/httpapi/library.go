package httpapi

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

func (a *API) handleListExercises(c *fiber.Ctx) error {
	page, err := pageQuery(c)
	if err != nil {
		return err
	}
	var afterName, afterSlug string
	if page.Cursor != nil {
		afterName, afterSlug, _ = strings.Cut(page.Cursor.Key, "\x00")
	}
	items, err := a.store.ListExercises(c.UserContext(), afterName, afterSlug, page.Limit+1)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(items, page.Limit, func(e domain.ExerciseSummary) (string, uuid.UUID) {
		return e.Name + "\x00" + e.Slug, uuid.Nil
	}))
}

// handleGetExercise answers with a strong ETag computed from the exact body, so
// any change of the exercise, its cues or mistakes changes it; If-None-Match
// with a current tag answers 304. The body comes from the exercise cache, which
// checks it against the library's version on every request (exercisecache.go).
func (a *API) handleGetExercise(c *fiber.Ctx) error {
	slug := c.Params("slug")
	if len(slug) > 100 {
		return domain.NotFound("exercise")
	}
	b, err := a.exercises.get(c.UserContext(), slug)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, b.etag)
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	if matchesAny(c.Get(fiber.HeaderIfNoneMatch), b.etag, true) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(b.body)
}

// matchesAny reports whether an If-Match / If-None-Match list holds etag (or
// is "*"). If-None-Match compares weakly (W/ prefixes ignored); If-Match strongly.
func matchesAny(header, etag string, weak bool) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		if weak {
			tag = strings.TrimPrefix(tag, "W/")
		}
		if tag == etag {
			return true
		}
	}
	return false
}

func versionETag(v int) string { return `"` + strconv.Itoa(v) + `"` }

// ifMatch reads the versions an admin edit may apply to from If-Match: a list
// of strong ETags ("N"), or "*" for any. Weak tags never match (RFC 9110's
// strong comparison). required: 428 without the header; otherwise a missing
// header matches any version.
func ifMatch(c *fiber.Ctx, required bool) (domain.VersionMatch, error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" {
		if required {
			return domain.VersionMatch{}, domain.Errorf(domain.CodePreconditionRequired, "send If-Match with the ETag you read")
		}
		return domain.VersionMatch{Any: true}, nil
	}
	var m domain.VersionMatch
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return domain.VersionMatch{Any: true}, nil
		}
		if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
			continue // weak or malformed: matches nothing
		}
		if v, err := strconv.Atoi(tag[1 : len(tag)-1]); err == nil && v > 0 {
			m.Versions = append(m.Versions, v)
		}
	}
	return m, nil
}

// optional is a PATCH field: absent, or present with a value (null is refused).
type optional[T any] struct {
	set, null bool
	v         T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.set = true
	if string(b) == "null" {
		o.null = true
		return nil
	}
	return json.Unmarshal(b, &o.v)
}

func (o optional[T]) ptr(field string) (*T, error) {
	if o.null {
		return nil, domain.Invalid(field, "%s must not be null", field)
	}
	if !o.set {
		return nil, nil
	}
	return &o.v, nil
}

type cueRequest struct {
	Text     string       `json:"text"`
	Phase    domain.Phase `json:"phase"`
	Priority *int         `json:"priority"`
}

func checkPhase(p domain.Phase) error {
	if !p.Valid() {
		return domain.Invalid("phase", "phase must be setup, concentric, lockout, eccentric or any")
	}
	return nil
}

func checkPriority(p int) error {
	if p < -1000 || p > 1000 {
		return domain.Invalid("priority", "priority must be from -1000 to 1000")
	}
	return nil
}

func (a *API) handleCreateCue(c *fiber.Ctx) error {
	var req cueRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	text, err := domain.CleanCueText("text", req.Text)
	if err != nil {
		return err
	}
	if err := checkPhase(req.Phase); err != nil {
		return err
	}
	if req.Priority == nil {
		return domain.Invalid("priority", "priority is required")
	}
	if err := checkPriority(*req.Priority); err != nil {
		return err
	}
	cue, err := a.store.CreateCue(c.UserContext(), principal(c).UserID, c.Params("slug"),
		domain.Cue{Text: text, Phase: req.Phase, Priority: *req.Priority})
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(cue.Version))
	return c.Status(fiber.StatusCreated).JSON(cue)
}

type cuePatchRequest struct {
	Text     optional[string]       `json:"text"`
	Phase    optional[domain.Phase] `json:"phase"`
	Priority optional[int]          `json:"priority"`
}

func (r cuePatchRequest) validate() (postgres.CuePatch, error) {
	var p postgres.CuePatch
	var err error
	if p.Text, err = r.Text.ptr("text"); err != nil {
		return p, err
	}
	if p.Phase, err = r.Phase.ptr("phase"); err != nil {
		return p, err
	}
	if p.Priority, err = r.Priority.ptr("priority"); err != nil {
		return p, err
	}
	if p.Text == nil && p.Phase == nil && p.Priority == nil {
		return p, domain.Invalid("", "send at least one of text, phase and priority")
	}
	if p.Text != nil {
		t, err := domain.CleanCueText("text", *p.Text)
		if err != nil {
			return p, err
		}
		p.Text = &t
	}
	if p.Phase != nil {
		if err := checkPhase(*p.Phase); err != nil {
			return p, err
		}
	}
	if p.Priority != nil {
		if err := checkPriority(*p.Priority); err != nil {
			return p, err
		}
	}
	return p, nil
}

// handleGetCue answers an admin with one cue and its ETag, the version an edit
// names in If-Match.
func (a *API) handleGetCue(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "cue")
	if err != nil {
		return err
	}
	cue, err := a.store.FindCue(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(cue.Version))
	return c.JSON(cue)
}

func (a *API) handleUpdateCue(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "cue")
	if err != nil {
		return err
	}
	match, err := ifMatch(c, true)
	if err != nil {
		return err
	}
	var req cuePatchRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	patch, err := req.validate()
	if err != nil {
		return err
	}
	cue, err := a.store.UpdateCue(c.UserContext(), principal(c).UserID, id, match, patch)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(cue.Version))
	return c.JSON(cue)
}

func (a *API) handleDeleteCue(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "cue")
	if err != nil {
		return err
	}
	match, err := ifMatch(c, false)
	if err != nil {
		return err
	}
	if err := a.store.DeleteCue(c.UserContext(), principal(c).UserID, id, match); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type mistakeRequest struct {
	Name   string   `json:"name"`
	Fix    string   `json:"fix"`
	CueIDs []string `json:"cue_ids"`
}

func cleanCueIDs(raw []string) ([]uuid.UUID, error) {
	if len(raw) < 1 || len(raw) > 10 {
		return nil, domain.Invalid("cue_ids", "cue_ids must hold 1 to 10 cue ids")
	}
	seen := map[uuid.UUID]bool{}
	ids := make([]uuid.UUID, 0, len(raw))
	for _, s := range raw {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return nil, domain.Invalid("cue_ids", "cue_ids must be UUIDs")
		}
		if seen[id] {
			return nil, domain.Invalid("cue_ids", "cue_ids must not repeat a cue")
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

func (a *API) handleCreateMistake(c *fiber.Ctx) error {
	var req mistakeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	name, err := domain.CleanText("name", req.Name, 1, 120)
	if err != nil {
		return err
	}
	fix, err := domain.CleanText("fix", req.Fix, 1, 500)
	if err != nil {
		return err
	}
	ids, err := cleanCueIDs(req.CueIDs)
	if err != nil {
		return err
	}
	m, err := a.store.CreateMistake(c.UserContext(), principal(c).UserID, c.Params("slug"), domain.Mistake{Name: name, Fix: fix, CueIDs: ids})
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(m.Version))
	return c.Status(fiber.StatusCreated).JSON(m)
}

type mistakePatchRequest struct {
	Name   optional[string]   `json:"name"`
	Fix    optional[string]   `json:"fix"`
	CueIDs optional[[]string] `json:"cue_ids"`
}

func (r mistakePatchRequest) validate() (postgres.MistakePatch, error) {
	var p postgres.MistakePatch
	name, err := r.Name.ptr("name")
	if err != nil {
		return p, err
	}
	fix, err := r.Fix.ptr("fix")
	if err != nil {
		return p, err
	}
	ids, err := r.CueIDs.ptr("cue_ids")
	if err != nil {
		return p, err
	}
	if name == nil && fix == nil && ids == nil {
		return p, domain.Invalid("", "send at least one of name, fix and cue_ids")
	}
	if name != nil {
		n, err := domain.CleanText("name", *name, 1, 120)
		if err != nil {
			return p, err
		}
		p.Name = &n
	}
	if fix != nil {
		f, err := domain.CleanText("fix", *fix, 1, 500)
		if err != nil {
			return p, err
		}
		p.Fix = &f
	}
	if ids != nil {
		if p.CueIDs, err = cleanCueIDs(*ids); err != nil {
			return p, err
		}
	}
	return p, nil
}

// handleGetMistake answers an admin with one mistake and its ETag.
func (a *API) handleGetMistake(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "mistake")
	if err != nil {
		return err
	}
	m, err := a.store.FindMistake(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(m.Version))
	return c.JSON(m)
}

func (a *API) handleUpdateMistake(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "mistake")
	if err != nil {
		return err
	}
	match, err := ifMatch(c, true)
	if err != nil {
		return err
	}
	var req mistakePatchRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	patch, err := req.validate()
	if err != nil {
		return err
	}
	m, err := a.store.UpdateMistake(c.UserContext(), principal(c).UserID, id, match, patch)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(m.Version))
	return c.JSON(m)
}

func (a *API) handleDeleteMistake(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "mistake")
	if err != nil {
		return err
	}
	match, err := ifMatch(c, false)
	if err != nil {
		return err
	}
	if err := a.store.DeleteMistake(c.UserContext(), principal(c).UserID, id, match); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) handleListAudit(c *fiber.Ctx) error {
	page, err := pageQuery(c)
	if err != nil {
		return err
	}
	f := postgres.AuditFilter{Entity: c.Query("entity"), Limit: page.Limit + 1}
	if f.Entity != "" && f.Entity != "cue" && f.Entity != "mistake" && f.Entity != "variation" && f.Entity != "user" {
		return domain.Invalid("entity", "entity must be cue, mistake, variation or user")
	}
	if id, ok, err := uuidQuery(c, "entity_id"); err != nil {
		return err
	} else if ok {
		f.EntityID = &id
	}
	if page.Cursor != nil {
		if f.BeforeID, err = strconv.ParseInt(page.Cursor.Key, 10, 64); err != nil {
			return domain.Invalid("cursor", "cursor is not one this server issued")
		}
	}
	items, err := a.store.ListAudit(c.UserContext(), f)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(items, page.Limit, func(e domain.AuditEntry) (string, uuid.UUID) {
		return strconv.FormatInt(e.ID, 10), uuid.Nil
	}))
}
