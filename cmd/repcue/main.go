// Command repcue is the whole server: serve, migrate, seed, admin create|disable, version,
// and devdb (find or start a development database). main only wires.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/repcue/repcue/internal/auth"
	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/devdb"
	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/httpapi"
	"github.com/repcue/repcue/internal/live"
	"github.com/repcue/repcue/internal/mail"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/push"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `repcue — the backend for live strength coaching

usage:
  repcue serve                                   serve the API on REPCUE_ADDR (default :8080)
  repcue migrate                                 apply database migrations (and the exercise library)
  repcue seed                                    create the demo accounts and print them
  repcue seed --load N [--coach-every 10] [--out repcue-load.json]
                                                 load testing: N athletes with live sets and
                                                 a coach per 10 of them, written with COPY;
                                                 their access tokens go to --out
  repcue admin create --email E --password P [--name N] [--promote]
                                                 create an admin account; --promote makes an
                                                 existing account admin (new password, every
                                                 session ended, audited)
  repcue admin disable --email E                 disable an account: no more sign-ins, every
                                                 session ended (audited)
  repcue devdb                                   print a development DATABASE_URL, starting a
                                                 throwaway PostgreSQL cluster if none answers
  repcue devkey                                  print the path of the development signing key
                                                 (.devdb/jwt-dev.pem), making it the first time
  repcue devkey vapid                            the same for the development Web Push (VAPID)
                                                 key (.devdb/vapid-dev.pem)
  repcue keygen jwt|vapid PATH                   write a new signing (jwt) or Web Push (vapid) key
                                                 to PATH (mode 0600) unless one is there already
  repcue healthcheck [URL]                       exit 0 if the server answers /readyz with 200
                                                 (default: REPCUE_ADDR on this machine)
  repcue version                                 print the version

Settings come from the environment; see .env.example.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "repcue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx)
	case "migrate":
		return migrate(ctx)
	case "seed":
		if len(args) > 1 {
			return seedLoad(ctx, args[1:], os.Stdout)
		}
		return seed(ctx)
	case "admin":
		switch {
		case len(args) >= 2 && args[1] == "create":
			return adminCreate(ctx, args[2:], os.Stdout)
		case len(args) >= 2 && args[1] == "disable":
			return adminDisable(ctx, args[2:], os.Stdout)
		}
		return errors.New("usage: repcue admin create --email E --password P [--name N] [--promote] | repcue admin disable --email E")
	case "devdb":
		return printDevDB(ctx)
	case "devkey":
		keyFile := devdb.SigningKeyFile
		if len(args) > 1 && args[1] == "vapid" {
			keyFile = devdb.VAPIDKeyFile
		}
		path, err := keyFile()
		if err != nil {
			return err
		}
		fmt.Println(path)
		return nil
	case "keygen":
		if len(args) != 3 {
			return errors.New("usage: repcue keygen jwt|vapid PATH")
		}
		path, err := devdb.KeyFile(args[1], args[2])
		if err != nil {
			return err
		}
		fmt.Println(path)
		return nil
	case "healthcheck":
		return healthcheck(ctx, args[1:])
	case "version":
		fmt.Println(version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func openDB(ctx context.Context) (*postgres.Store, config.Config, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, cfg, err
	}
	store, err := openStore(ctx, cfg)
	return store, cfg, err
}

func openStore(ctx context.Context, cfg config.Config) (*postgres.Store, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("DATABASE_URL is not set (for development, `make run` finds or starts a database)")
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	var parseErr *pgconn.ParseConfigError
	if errors.As(err, &parseErr) {
		// pgx quotes the connection string it could not parse, and its masking
		// misses forms such as "password = secret": say why, never what.
		reason := parseErr.Error()
		if i := strings.LastIndex(reason, "`: "); i >= 0 {
			reason = reason[i+len("`: "):]
		}
		return nil, fmt.Errorf("DATABASE_URL cannot be parsed: %s", reason)
	}
	if err != nil {
		return nil, err
	}
	return postgres.NewStore(pool), nil
}

func migrate(ctx context.Context) error {
	store, _, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	applied, err := postgres.Migrate(ctx, store.Pool())
	for _, name := range applied {
		fmt.Println("applied", name)
	}
	if err == nil && len(applied) == 0 {
		fmt.Println("schema is up to date at version", postgres.LatestVersion())
	}
	return err
}

func seed(ctx context.Context) error {
	store, cfg, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	hasher := auth.NewHasher(cfg.HashWorkers)
	if err := store.SeedDemo(ctx, func(pw string) (string, error) { return hasher.Hash(ctx, pw) }); err != nil {
		return err
	}
	fmt.Println("demo accounts (the athlete is linked to the coach):")
	for _, a := range postgres.DemoAccounts {
		fmt.Printf("  %-8s %-26s password: %s\n", a.Role, a.Email, a.Password)
	}
	return nil
}

// adminCreate makes an admin account. An existing account is never promoted
// silently: that takes --promote, which also sets the password given, ends
// every session of the account and writes an audit row.
func adminCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	email := fs.String("email", "", "the admin's email")
	password := fs.String("password", "", "the admin's password (at least 10 characters)")
	name := fs.String("name", "Admin", "the admin's display name (new accounts only)")
	promote := fs.Bool("promote", false, "make an existing account with this email an admin: sets the password, ends its sessions, audited")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("admin create: unexpected argument %q", fs.Arg(0))
	}
	e := domain.NormalizeEmail(*email)
	if e == "" || len([]rune(*password)) < auth.PasswordMinRunes || len(*password) > auth.PasswordMaxBytes {
		return fmt.Errorf("--email is required and --password needs at least %d characters", auth.PasswordMinRunes)
	}
	displayName, err := domain.CleanText("name", *name, 1, 80)
	if err != nil {
		return err
	}
	store, cfg, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	hash, err := auth.NewHasher(cfg.HashWorkers).Hash(ctx, *password)
	if err != nil {
		return err
	}
	if *promote {
		u, err := store.PromoteToAdmin(ctx, e, hash)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return fmt.Errorf("no account has the email %s: run again without --promote to create it", e)
		}
		if errors.Is(err, postgres.ErrUnverified) {
			return fmt.Errorf("%s has not verified its email, so it cannot be promoted: its owner confirms the address "+
				"with the link of the verification mail (POST /v1/me/email/verification sends a new one)", e)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s (%s) is now an admin; its password is the one given and every session it had has ended\n", u.Email, u.ID)
		return nil
	}
	u, err := store.CreateAdmin(ctx, e, displayName, hash)
	if domain.ErrorCode(err) == domain.CodeConflict {
		return fmt.Errorf("an account with the email %s already exists: to make it an admin, run again with --promote (this sets its password and ends its sessions)", e)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "admin %s (%s) is ready\n", u.Email, u.ID)
	return nil
}

// adminDisable disables an account and ends its sessions.
func adminDisable(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("admin disable", flag.ContinueOnError)
	email := fs.String("email", "", "the account's email")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e := domain.NormalizeEmail(*email)
	if e == "" || fs.NArg() > 0 {
		return errors.New("usage: repcue admin disable --email E")
	}
	store, _, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	u, err := store.DisableUser(ctx, e)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return fmt.Errorf("no account has the email %s", e)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s (%s) is disabled and every session it had has ended\n", u.Email, u.ID)
	return nil
}

func printDevDB(ctx context.Context) error {
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	srv, err := devdb.Find(ctx, logf)
	if err != nil {
		return err
	}
	name := "repcue"
	if srv.Source == "DATABASE_URL" {
		name = srv.DatabaseName()
	} else if err := srv.EnsureDatabase(ctx, name); err != nil {
		return err
	}
	logf("devdb: using %s (%s)", config.MaskDSN(srv.URL(name)), srv.Source)
	fmt.Println(srv.URL(name))
	return nil
}

func serve(ctx context.Context) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	// The signing key is checked first: a server that would refuse to start
	// says so before it touches the database.
	key, err := signingKey(cfg, log)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	log.Info("starting repcue", "version", version, "config", cfg.Masked())
	if err := postgres.CheckSchema(ctx, store.Pool()); err != nil {
		return err
	}

	// Sets ended before their progress figures were written with the ending
	// get them now, before anything reads them (none after the first start).
	if n, err := live.BackfillRollups(ctx, store, log); err != nil {
		return fmt.Errorf("backfill progress figures: %w", err)
	} else if n > 0 {
		log.Info("progress figures stored for earlier sets", "sets", n)
	}
	vapid, pushOn, err := vapidKey(cfg, log)
	if err != nil {
		return err
	}
	pushWorker := push.NewWorker(store, push.Config{Senders: map[string]push.Sender{
		domain.DeviceKindWebPush: push.NewWebPush(vapid, cfg.Push.VAPIDSubject, cfg.Push.AllowLoopbackHTTP, 10*time.Second),
	}}, log)
	if err := startPprof(log); err != nil {
		return err
	}
	// One node keeps its live sets to itself; with REPCUE_NATS_URL it is one
	// of a cluster (DESIGN.md §7), and NATS carries what crosses between nodes.
	var bus live.Bus = live.Solo{}
	if cfg.NATSURL != "" {
		nb, err := live.DialNATS(cfg.NATSURL, "repcue "+version, log)
		if err != nil {
			return fmt.Errorf("NATS: %w", err)
		}
		bus = nb
	}
	hub := live.New(store, log, live.Config{HoldTick: cfg.HoldTick, Bus: bus})
	busName := "in-process (one node)"
	if cfg.NATSURL != "" {
		busName = "NATS"
	}
	log.Info("live hub started", "node", hub.Node(), "bus", busName)
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registry.MustRegister(hub.Collectors()...)
	outbox, err := mailDispatcher(cfg, store, log)
	if err != nil {
		return err
	}
	mailCtx, stopMail := context.WithCancel(context.WithoutCancel(ctx))
	outbox.Start(mailCtx)
	defer func() { stopMail(); outbox.Wait() }()
	app := httpapi.New(httpapi.Deps{
		Config:   cfg,
		Log:      log,
		Store:    store,
		Tokens:   auth.NewTokens(key, cfg.Issuer, cfg.Audience, cfg.AccessTTL, nil),
		Hasher:   auth.NewHasher(cfg.HashWorkers),
		Live:     hub,
		Ready:    func(context.Context) error { return hub.Ready() },
		Registry: registry,

		Push:           pushWorker,
		VAPIDPublicKey: vapid.PublicKey(),
		Outbox:         outbox,
	})

	// The push worker sends what the outbox holds, including what an earlier
	// run left; it stops after the last request, and what it had not sent
	// waits in the outbox for the next run.
	if pushOn {
		pushCtx, stopPush := context.WithCancel(context.WithoutCancel(ctx))
		pushDone := make(chan struct{})
		go func() { defer close(pushDone); pushWorker.Run(pushCtx) }()
		defer func() { stopPush(); <-pushDone }()
	}

	errc := make(chan error, 2)
	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" {
		// /metrics on its own listener (for example reachable only from the
		// monitoring network); the main listener then has none.
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("REPCUE_METRICS_ADDR: %w", err)
		}
		metricsSrv = &http.Server{
			Handler:           httpapi.MetricsHandler(registry),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
		}
		go func() {
			if err := metricsSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	go func() { errc <- app.Listen(cfg.Addr) }()
	log.Info("listening", "addr", cfg.Addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	// Stop listening and finish REST requests; then commit pending live events,
	// acknowledge them and close every socket with 1001 (Fiber does not wait for
	// hijacked WebSocket connections itself).
	err = app.ShutdownWithContext(shutdownCtx)
	if herr := hub.Shutdown(shutdownCtx); herr != nil && err == nil {
		err = herr
	}
	if metricsSrv != nil {
		if merr := metricsSrv.Shutdown(shutdownCtx); merr != nil && err == nil {
			err = merr
		}
	}
	return err
}

// vapidKey is the key that signs Web Push messages, from
// REPCUE_VAPID_PRIVATE_KEY_FILE. Without it, REPCUE_DEV=true makes one now
// (browsers that subscribed against an earlier one get nothing until they
// subscribe again; `make run` keeps one in .devdb/ instead); otherwise push
// notifications are off: the zero key, and on=false.
func vapidKey(cfg config.Config, log *slog.Logger) (key push.VAPIDKey, on bool, err error) {
	switch {
	case cfg.Push.VAPIDKeyFile != "":
		key, err = push.LoadVAPIDKey(cfg.Push.VAPIDKeyFile)
		return key, err == nil, err
	case cfg.Dev:
		log.Warn("REPCUE_DEV=true and REPCUE_VAPID_PRIVATE_KEY_FILE is not set: using a VAPID key generated now; browser push subscriptions will not survive a restart")
		return push.GenerateVAPIDKey(), true, nil
	}
	log.Warn("REPCUE_VAPID_PRIVATE_KEY_FILE is not set: push notifications are off")
	return push.VAPIDKey{}, false, nil
}

// mailDispatcher builds the outbox's dispatcher: SMTP when REPCUE_SMTP_URL is
// set; else, in development only, a sender that logs each message (links
// included); else mail is off, which the log says at start.
func mailDispatcher(cfg config.Config, store *postgres.Store, log *slog.Logger) (*mail.Dispatcher, error) {
	var sender mail.Sender
	switch {
	case cfg.SMTPURL != "":
		s, err := mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom)
		if err != nil {
			return nil, err
		}
		sender = s
	case cfg.Dev:
		log.Warn("REPCUE_SMTP_URL is not set: mail is written to this log instead (REPCUE_DEV=true); never do this in production")
		sender = mail.DevLog{Log: log}
	default:
		log.Warn("MAIL IS OFF: REPCUE_SMTP_URL is not set, so no verification, email-change or password-reset mail is sent; " +
			"set REPCUE_SMTP_URL, REPCUE_MAIL_FROM and REPCUE_PUBLIC_URL")
		sender = mail.Off{}
	}
	return mail.NewDispatcher(store, sender, log, 0), nil
}

// errNoSigningKey is why serve refuses to start without REPCUE_JWT_KEY_FILE: a
// key made up at start would sign everyone out at every restart, and two nodes
// would never accept each other's tokens.
var errNoSigningKey = errors.New("REPCUE_JWT_KEY_FILE is not set: serve needs the access-token signing key " +
	"(make one with `openssl genpkey -algorithm ed25519 -out repcue-jwt.pem`); for development only, " +
	"REPCUE_DEV=true allows a key generated at start (`make run` keeps one in .devdb/ instead)")

func signingKey(cfg config.Config, log *slog.Logger) (ed25519.PrivateKey, error) {
	if cfg.JWTKeyFile != "" {
		return auth.LoadKey(cfg.JWTKeyFile)
	}
	if !cfg.Dev {
		return nil, errNoSigningKey
	}
	log.Warn("REPCUE_DEV=true and REPCUE_JWT_KEY_FILE is not set: using a signing key generated now; tokens will not survive a restart")
	return auth.GenerateKey(), nil
}

// healthcheck asks a running server whether it is ready (GET /readyz): for a
// container's HEALTHCHECK, which has no curl in a distroless image.
func healthcheck(ctx context.Context, args []string) error {
	url := ""
	if len(args) > 0 {
		url = args[0]
	} else {
		cfg, err := config.FromEnv()
		if err != nil {
			return err
		}
		_, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return fmt.Errorf("REPCUE_ADDR %q: %w", cfg.Addr, err)
		}
		url = "http://" + net.JoinHostPort("127.0.0.1", port) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not healthy: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("not healthy: %s answered %d", url, res.StatusCode)
	}
	return nil
}
