package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/repcue/repcue/api"
	"github.com/repcue/repcue/internal/domain"
)

func (a *API) handleLivez(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// handleReadyz answers 503 while the database or the bus cannot be used, so a
// load balancer stops sending traffic until they are back.
func (a *API) handleReadyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := a.store.Pool().Ping(ctx); err != nil {
		return &domain.Error{Code: domain.CodeUnavailable, Message: "database unavailable", RetryAfter: 2 * time.Second, Err: err}
	}
	if a.ready != nil {
		if err := a.ready(ctx); err != nil {
			return &domain.Error{Code: domain.CodeUnavailable, Message: "message bus unavailable", RetryAfter: 2 * time.Second, Err: err}
		}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (a *API) metricsHandler() fiber.Handler {
	h := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	return func(c *fiber.Ctx) error {
		h(c.Context())
		return nil
	}
}

// MetricsHandler serves GET /metrics alone, for the separate listener of
// REPCUE_METRICS_ADDR (the main listener then has no /metrics).
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(fiber.HeaderXContentTypeOptions, "nosniff")
		mux.ServeHTTP(w, r)
	})
}

func (a *API) handleOpenAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/yaml")
	return c.Send(api.OpenAPI)
}

func (a *API) handleJWKS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(a.tokens.JWKS())
}
