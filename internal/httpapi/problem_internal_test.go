package httpapi

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// Errors Fiber raises itself are the client's doing, never a 500: a request
// that did not arrive within the read timeout included.
func TestFiberErrorsAreNeverInternal(t *testing.T) {
	for _, fe := range []*fiber.Error{fiber.ErrRequestTimeout, fiber.ErrRequestEntityTooLarge, fiber.ErrRequestHeaderFieldsTooLarge, fiber.ErrMethodNotAllowed} {
		app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), func(*fiber.Ctx) {})})
		app.Get("/", func(*fiber.Ctx) error { return fe })
		resp, err := app.Test(httptest.NewRequest("GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 500 {
			t.Errorf("%d %s answered %d", fe.Code, fe.Message, resp.StatusCode)
		}
	}
}
