package httpapi

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/repcue/repcue/internal/domain"
)

// decodedCodings are the request Content-Encodings the server inflates; any
// other is refused with 415. At most one coding is accepted: a chain such as
// "gzip, gzip" only serves to multiply what a small body expands to.
var decodedCodings = map[string]func(*fasthttp.Request, int) ([]byte, error){
	"gzip":    (*fasthttp.Request).BodyGunzipWithLimit,
	"x-gzip":  (*fasthttp.Request).BodyGunzipWithLimit,
	"deflate": (*fasthttp.Request).BodyInflateWithLimit,
	"br":      (*fasthttp.Request).BodyUnbrotliWithLimit,
}

// inflateBody runs before every route. It decodes a compressed request body
// with a hard limit of MaxBodyBytes on what it inflates to (413 past it), and
// refuses codings it does not decode (415). It then removes Content-Encoding, so
// that c.Body() further on has nothing left to inflate: Fiber's c.Body() decodes
// any gzip, br or deflate chain without a limit.
func (a *API) inflateBody(c *fiber.Ctx) error {
	req := c.Request()
	values := req.Header.PeekAll(fiber.HeaderContentEncoding)
	if len(values) == 0 {
		return c.Next()
	}
	var codings []string
	for _, v := range values {
		for _, tok := range strings.Split(string(v), ",") {
			if tok = strings.ToLower(strings.TrimSpace(tok)); tok != "" && tok != "identity" {
				codings = append(codings, tok)
			}
		}
	}
	req.Header.Del(fiber.HeaderContentEncoding)
	if len(codings) == 0 {
		return c.Next()
	}
	inflate, known := decodedCodings[codings[0]]
	if !known || len(codings) > 1 {
		return domain.Errorf(domain.CodeUnsupportedMediaType,
			"Content-Encoding must be one of gzip, deflate or br (one coding, not a chain), or none")
	}
	if len(req.Body()) == 0 {
		return c.Next()
	}
	body, err := inflate(req, MaxBodyBytes)
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return domain.Errorf(domain.CodePayloadTooLarge, "the body inflates to more than %d bytes", MaxBodyBytes)
	case err != nil:
		return domain.Errorf(domain.CodeInvalid, "the body is not valid %s data", codings[0])
	}
	req.SetBodyRaw(body)
	return c.Next()
}
