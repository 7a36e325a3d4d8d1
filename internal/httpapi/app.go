// Package httpapi is repcue's HTTP surface: the Fiber app, every route (in
// routes.go), request decoding and validation, and the one error handler that
// turns errors into problem+json.
package httpapi

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/push"
)

// MaxBodyBytes is the largest request body; larger ones are refused with 413
// from their Content-Length, before the body is read. A compressed body is held
// to it after decoding too (see inflateBody).
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
	// Outbox is told when mail was committed (nil: it polls by itself).
	Outbox Outbox
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
	// inviteAddressLimiter counts wrong invite codes per client address.
	inviteAddressLimiter *auth.Throttle
	// Password-reset requests per email address and per client address, and
	// verification mails per account: each request counts, found or not.
	resetEmailLimiter   *auth.Throttle
	resetAddressLimiter *auth.Throttle
	verifyLimiter       *auth.Throttle
	outbox              Outbox
	metrics             *metrics
	registry            *prometheus.Registry
	sessions            *sessionCache
	exercises           *exerciseCache
	// origins is the normalised set of REPCUE_ALLOWED_ORIGINS.
	origins map[string]bool
	// routePaths are the paths of the registered routes: the route label's values.
	routePaths map[string]bool
	// push is woken after commits that queue notices; vapidPublicKey is empty
	// when push is off.
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
		// Per address, for invite codes: the same guessing spread over many
		// athlete accounts; room for a gym's athletes mistyping behind one address.
		inviteAddressLimiter: auth.NewThrottle(d.Store, "invite-address", 30, time.Second, 15*time.Minute, d.Now),
		// Reset mails: 3 per address, then waits from 1 min doubling up to 1 h;
		// per client address 10, then the same waits.
		resetEmailLimiter:   auth.NewThrottle(d.Store, "reset-email", 3, time.Minute, time.Hour, d.Now),
		resetAddressLimiter: auth.NewThrottle(d.Store, "reset-address", 10, time.Minute, time.Hour, d.Now),
		verifyLimiter:       auth.NewThrottle(d.Store, "verify-resend", 3, time.Minute, time.Hour, d.Now),
		outbox:              d.Outbox,
		metrics:             newMetrics(d.Registry),
		sessions:            newSessionCache(d.Store, d.Now),
		exercises:           newExerciseCache(d.Store),
	}
	a.push, a.vapidPublicKey = d.Push, d.VAPIDPublicKey
	a.origins = map[string]bool{}
	for _, o := range a.cfg.AllowedOrigins {
		if n, ok := config.NormalizeOrigin(o); ok {
			a.origins[n] = true
		}
	}
	app := fiber.New(fiber.Config{
		AppName:               "repcue",
		BodyLimit:             MaxBodyBytes,
		ErrorHandler:          errorHandler(d.Log, a.setSecurityHeaders),
		DisableStartupMessage: true,
		ReadTimeout:           15 * time.Second,
		WriteTimeout:          15 * time.Second,
		IdleTimeout:           60 * time.Second,
		ReadBufferSize:        8192,
	})
	a.refuseUnknownMethods(app)
	app.Use(a.observe)
	app.Use(recover.New())
	app.Use(a.inflateBody)
	app.Use(a.cors())
	a.routes(app)
	a.routePaths = map[string]bool{}
	for _, r := range app.GetRoutes(true) { // true: without middleware
		a.routePaths[r.Path] = true
	}
	return app
}

// cors answers browsers on the dashboards' origins (REPCUE_ALLOWED_ORIGINS,
// compared in normalised form): preflights, and the headers a cross-origin
// page may read. Never a wildcard, never credentials: the API takes bearer
// tokens, not cookies. The server's own pages (/app/) need none of it.
func (a *API) cors() fiber.Handler {
	return cors.New(cors.Config{
		AllowOriginsFunc: func(origin string) bool {
			n, ok := config.NormalizeOrigin(origin)
			return ok && a.origins[n]
		},
		AllowMethods:  "GET,POST,PATCH,DELETE",
		AllowHeaders:  "Authorization,Content-Type,Content-Encoding,If-Match,If-None-Match,Idempotency-Key",
		ExposeHeaders: "ETag,Retry-After,Location",
		MaxAge:        600,
	})
}

// setSecurityHeaders marks every response: nosniff always, and HSTS when the
// request came over HTTPS (directly, or to a trusted proxy that says so).
func (a *API) setSecurityHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if a.forwardedHTTPS(c.Context()) {
		c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
	}
}

// observe logs and counts every request. Only the path is logged, never the
// query string (live tickets travel there) nor any header. Label values are
// drawn from fixed sets (known methods, registered routes), never from the
// request's own bytes, which fasthttp reuses once the handler returns.
func (a *API) observe(c *fiber.Ctx) error {
	start := time.Now()
	a.setSecurityHeaders(c)
	method := methodLabel(c.Context().Method())
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	a.record(method, a.routeLabel(c.Route()), status, time.Since(start))
	if a.log.Enabled(c.UserContext(), slog.LevelDebug) {
		a.log.Debug("request", "method", method, "path", strings.Clone(c.Path()), "client", a.clientIP(c).String(),
			"status", status, "ms", time.Since(start).Milliseconds())
	}
	return nil
}

func (a *API) record(method, route string, status int, elapsed time.Duration) {
	a.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	a.metrics.latency.WithLabelValues(method, route).Observe(elapsed.Seconds())
}

// Label values for requests outside the fixed sets: a method Fiber does not
// route, and a request no route handled (no such endpoint, or refused before
// routing: an unknown method, a body that cannot be decoded).
const (
	otherMethod = "OTHER"
	noRoute     = "none"
)

// methodLabel maps a request method to a constant string: one of the methods
// Fiber routes, or OTHER.
func methodLabel(m []byte) string {
	for _, known := range fiber.DefaultMethods {
		if string(m) == known { // compared, not converted: no allocation
			return known
		}
	}
	return otherMethod
}

// routeLabel is the registered path of the route that answered, or "none"
// when only middleware ran (Fiber then reports the last middleware as the
// route).
func (a *API) routeLabel(r *fiber.Route) string {
	if r == nil || !a.routePaths[r.Path] {
		return noRoute
	}
	return r.Path // the path as registered: a string of the program, not of the request
}

// refuseUnknownMethods answers requests with a method Fiber does not route
// before Fiber sees them: Fiber would answer them with a bare 400 that skips
// every middleware. They get problem+json, the security headers and a count
// under the OTHER label like any other request.
func (a *API) refuseUnknownMethods(app *fiber.App) {
	srv := app.Server()
	next := srv.Handler
	srv.Handler = func(fctx *fasthttp.RequestCtx) {
		if methodLabel(fctx.Method()) != otherMethod {
			next(fctx)
			return
		}
		start := time.Now()
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		err := domain.Errorf(domain.CodeInvalid, "unsupported HTTP method")
		if herr := app.ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusBadRequest)
		}
		a.record(otherMethod, noRoute, c.Response().StatusCode(), time.Since(start))
	}
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
