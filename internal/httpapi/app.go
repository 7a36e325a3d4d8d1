// Package httpapi is repcue's HTTP surface: the Fiber app, every route (in
// routes.go), request decoding and validation, and the one error handler that
// turns errors into problem+json.
package httpapi

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/push"
)

// MaxBodyBytes is the largest request body; larger ones are refused with 413
// from their Content-Length, before the body is read.
const MaxBodyBytes = 1 << 20

// Deps is what the API needs, built once in main.
type Deps struct {
	Config   config.Config
	Log      *slog.Logger
	Store    *postgres.Store
	Tokens   *auth.Tokens
	Hasher   *auth.Hasher
	Live     *live.Hub
	Registry *prometheus.Registry
	// Push is the push worker, woken after a commit that queued notices; nil
	// leaves them to its next poll (or to another process).
	Push *push.Worker
	// VAPIDPublicKey is the key browsers subscribe with; empty turns the push
	// routes into 503s.
	VAPIDPublicKey string
	// Ready reports whether the server's dependencies beyond the database (the
	// bus) are usable; nil means there are none.
	Ready func(context.Context) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// API holds the handlers' dependencies.
type API struct {
	cfg            config.Config
	log            *slog.Logger
	store          *postgres.Store
	tokens         *auth.Tokens
	hasher         *auth.Hasher
	live           *live.Hub
	ready          func(context.Context) error
	now            func() time.Time
	accountLimiter *auth.Throttle
	addressLimiter *auth.Throttle
	inviteLimiter  *auth.Throttle
	metrics        *metrics
	registry       *prometheus.Registry
	sessions       *sessionCache
	push           *push.Worker
	vapidPublicKey string
}

// New builds the Fiber app with every route.
func New(d Deps) *fiber.App {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	a := &API{
		cfg: d.Config, log: d.Log, store: d.Store, tokens: d.Tokens, hasher: d.Hasher, live: d.Live,
		ready: d.Ready, now: d.Now, registry: d.Registry,
		// Per account: 5 free failures, then waits from 1 s doubling up to 15 min.
		accountLimiter: auth.NewThrottle(d.Store, "login-account", 5, time.Second, 15*time.Minute, d.Now),
		// Per address: more room for a gym sharing one public address.
		addressLimiter: auth.NewThrottle(d.Store, "login-address", 20, time.Second, 15*time.Minute, d.Now),
		// Per athlete, for invite codes: 10 free wrong codes (typos), then waits
		// from 1 s doubling up to 15 min, so codes cannot be guessed by brute force.
		inviteLimiter: auth.NewThrottle(d.Store, "invite-athlete", 10, time.Second, 15*time.Minute, d.Now),
		metrics:       newMetrics(d.Registry),
		sessions:      newSessionCache(d.Store, d.Now),
	}
	a.push, a.vapidPublicKey = d.Push, d.VAPIDPublicKey
	app := fiber.New(fiber.Config{
		AppName:               "repcue",
		BodyLimit:             MaxBodyBytes,
		ErrorHandler:          errorHandler(d.Log),
		DisableStartupMessage: true,
		ReadTimeout:           15 * time.Second,
		WriteTimeout:          15 * time.Second,
		IdleTimeout:           60 * time.Second,
		ReadBufferSize:        8192,
	})
	app.Use(a.observe)
	app.Use(recover.New())
	a.routes(app)
	return app
}

// observe logs and counts every request. Only the path is logged, never the
// query string (live tickets travel there) nor any header.
func (a *API) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	route := c.Route().Path
	elapsed := time.Since(start)
	a.metrics.requests.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Inc()
	a.metrics.latency.WithLabelValues(c.Method(), route).Observe(elapsed.Seconds())
	a.log.Debug("request", "method", c.Method(), "path", c.Path(), "status", status, "ms", elapsed.Milliseconds())
	return nil
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "repcue_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "repcue_http_request_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}
