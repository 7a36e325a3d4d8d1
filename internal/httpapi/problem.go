package httpapi

import (
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/repcue/repcue/internal/domain"
)

// statusOf is the one place that maps an error code to an HTTP status.
func statusOf(code domain.Code) int {
	switch code {
	case domain.CodeInvalid, domain.CodeInvalidTransition:
		return fiber.StatusBadRequest
	case domain.CodeUnauthorized:
		return fiber.StatusUnauthorized
	case domain.CodeForbidden:
		return fiber.StatusForbidden
	case domain.CodeNotFound:
		return fiber.StatusNotFound
	case domain.CodeConflict:
		return fiber.StatusConflict
	case domain.CodePreconditionFailed:
		return fiber.StatusPreconditionFailed
	case domain.CodePreconditionRequired:
		return fiber.StatusPreconditionRequired
	case domain.CodeTooManyRequests:
		return fiber.StatusTooManyRequests
	case domain.CodePayloadTooLarge:
		return fiber.StatusRequestEntityTooLarge
	case domain.CodeUnsupportedMediaType:
		return fiber.StatusUnsupportedMediaType
	case domain.CodeUnavailable:
		return fiber.StatusServiceUnavailable
	}
	return fiber.StatusInternalServerError
}

// codeOfStatus classifies errors raised by Fiber itself (no route, body too large…).
func codeOfStatus(status int) domain.Code {
	switch status {
	case fiber.StatusBadRequest:
		return domain.CodeInvalid
	case fiber.StatusUnauthorized:
		return domain.CodeUnauthorized
	case fiber.StatusForbidden:
		return domain.CodeForbidden
	case fiber.StatusNotFound:
		return domain.CodeNotFound
	case fiber.StatusMethodNotAllowed:
		return domain.CodeNotFound
	case fiber.StatusRequestEntityTooLarge:
		return domain.CodePayloadTooLarge
	case fiber.StatusUnsupportedMediaType:
		return domain.CodeUnsupportedMediaType
	case fiber.StatusTooManyRequests:
		return domain.CodeTooManyRequests
	case fiber.StatusServiceUnavailable:
		return domain.CodeUnavailable
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return domain.CodeInvalid
	case fiber.StatusRequestTimeout:
		// The request did not arrive within the read timeout (a client that
		// went quiet mid-request): the client's doing, answered 400, not a 500.
		return domain.CodeInvalid
	}
	return domain.CodeInternal
}

var titles = map[domain.Code]string{
	domain.CodeInvalid:              "Invalid request",
	domain.CodeUnauthorized:         "Unauthorized",
	domain.CodeForbidden:            "Forbidden",
	domain.CodeNotFound:             "Not found",
	domain.CodeConflict:             "Conflict",
	domain.CodePreconditionFailed:   "Precondition failed",
	domain.CodePreconditionRequired: "Precondition required",
	domain.CodeTooManyRequests:      "Too many requests",
	domain.CodePayloadTooLarge:      "Payload too large",
	domain.CodeUnsupportedMediaType: "Unsupported media type",
	domain.CodeInternal:             "Internal error",
	domain.CodeUnavailable:          "Service unavailable",
	domain.CodeInvalidTransition:    "Invalid transition",
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string      `json:"type"`
	Title  string      `json:"title"`
	Status int         `json:"status"`
	Detail string      `json:"detail"`
	Code   domain.Code `json:"code"`
	Field  string      `json:"field,omitempty"`
	// LiveSetID extends a 409 of POST /v1/sets: the athlete's live set.
	LiveSetID string `json:"live_set_id,omitempty"`
	// Current is, on a 412, the entity as it is now (its ETag is the answer's).
	Current any `json:"current,omitempty"`
}

// errorHandler is Fiber's one error handler: every error becomes problem+json,
// and internal failures are logged but never described to the client. Fiber
// also calls it for requests refused before any route runs (a body over the
// limit, headers too large), so it sets the security headers itself.
func errorHandler(log *slog.Logger, setHeaders func(*fiber.Ctx)) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		setHeaders(c)
		var de *domain.Error
		var fe *fiber.Error
		switch {
		case errors.As(err, &de):
		case errors.As(err, &fe):
			de = &domain.Error{Code: codeOfStatus(fe.Code), Message: fe.Message}
			if de.Code == domain.CodeInternal {
				de = domain.Internal(err)
			} else if fe.Code == fiber.StatusMethodNotAllowed || fe.Code == fiber.StatusNotFound {
				de.Message = "no such endpoint"
			}
		default:
			de = domain.Internal(err)
		}
		status := statusOf(de.Code)
		detail := de.Message
		if status >= 500 && de.Code != domain.CodeUnavailable {
			detail = "internal error"
		}
		if de.Code == domain.CodeInternal || de.Code == domain.CodeUnavailable {
			log.Error("request failed", "method", strings.Clone(c.Method()), "path", strings.Clone(c.Path()), "code", de.Code, "err", err)
		}
		if de.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(de.RetryAfter.Seconds()))))
		}
		if de.CurrentVersion > 0 {
			c.Set(fiber.HeaderETag, versionETag(de.CurrentVersion))
		}
		c.Status(status)
		c.Set(fiber.HeaderContentType, "application/problem+json")
		body, _ := c.App().Config().JSONEncoder(Problem{
			Type: "urn:repcue:problem:" + string(de.Code), Title: titles[de.Code],
			Status: status, Detail: detail, Code: de.Code, Field: de.Field, LiveSetID: de.LiveSetID, Current: de.Current,
		})
		return c.Send(body)
	}
}
