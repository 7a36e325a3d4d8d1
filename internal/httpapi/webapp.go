package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/webapp"
)

// handleWebApp serves the embedded reference clients under /app/ with a strict
// Content-Security-Policy (their own origin only). They are public files: the
// pages sign in through the API like any client.
func (a *API) handleWebApp(c *fiber.Ctx) error {
	path := string(c.Request().URI().Path())
	if path == "/app" {
		return c.Redirect("/app/", fiber.StatusMovedPermanently)
	}
	body, ctype, ok := webapp.File(strings.TrimPrefix(path, "/app/"))
	if !ok {
		return domain.Errorf(domain.CodeNotFound, "no such file")
	}
	for k, v := range webapp.Headers {
		c.Set(k, v)
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	c.Set(fiber.HeaderETag, etag)
	if matchesAny(c.Get(fiber.HeaderIfNoneMatch), etag, true) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, ctype)
	return c.Send(body)
}
