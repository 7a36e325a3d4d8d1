package mail_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/mail"
	"github.com/repcue/repcue/internal/mailtest"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func sender(t *testing.T, srv *mailtest.Server) *mail.SMTP {
	t.Helper()
	s, err := mail.NewSMTP(srv.URL, "repcue <no-reply@repcue.test>")
	if err != nil {
		t.Fatal(err)
	}
	return s.WithTLSConfig(srv.ClientTLS)
}

// start runs a dispatcher until the test ends (or stop is called).
func start(t *testing.T, store *postgres.Store, s mail.Sender, backoff ...time.Duration) (d *mail.Dispatcher, stop func()) {
	t.Helper()
	d = mail.NewDispatcher(store, s, quiet, 20*time.Millisecond)
	wait := 10 * time.Millisecond
	if len(backoff) > 0 {
		wait = backoff[0]
	}
	d.Backoff = func(int) time.Duration { return wait }
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); d.Wait() }) }
	t.Cleanup(stop)
	return d, stop
}

func enqueue(t *testing.T, store *postgres.Store, to, subject, body string) {
	t.Helper()
	if err := store.EnqueueMail(context.Background(), postgres.Mail{Kind: "test", To: to, Subject: subject, Body: body, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
}

// A message leaves the outbox through a real SMTP session: STARTTLS, PLAIN
// authentication, an RFC 5322 message whose UTF-8 subject and body arrive intact.
func TestSMTPDeliversWhatTheOutboxHolds(t *testing.T) {
	t.Parallel()
	store := postgres.NewStore(testdb.New(t))
	srv := mailtest.Start(t)
	enqueue(t, store, "ana@example.com", "Zurücksetzen — reset", "Line one\nhttps://app.example.com/reset-password?token=abc_DEF-123\n"+strings.Repeat("long line ", 20))
	start(t, store, sender(t, srv))
	got := srv.Wait(t, 1, 10*time.Second)[0]
	if got.To != "ana@example.com" || got.From != "no-reply@repcue.test" || !got.TLS {
		t.Fatalf("envelope %s → %s (TLS %v)", got.From, got.To, got.TLS)
	}
	if got.Subject != "Zurücksetzen — reset" || !strings.HasPrefix(got.Body, "Line one\n") || got.Token() != "abc_DEF-123" ||
		!strings.Contains(got.Body, strings.Repeat("long line ", 20)) {
		t.Fatalf("message %q / %q", got.Subject, got.Body)
	}
	if got.Header.Get("Message-Id") == "" || got.Header.Get("Date") == "" {
		t.Fatalf("headers %v", got.Header)
	}
	waitPending(t, store, 0)
	var body string
	if err := store.Pool().QueryRow(context.Background(), `SELECT body FROM mail_outbox`).Scan(&body); err != nil || body != "" {
		t.Fatalf("a sent message keeps its body (with its link): %q, %v", body, err)
	}
}

// Temporary refusals are retried until the message is accepted, once.
func TestTemporaryFailuresAreRetried(t *testing.T) {
	t.Parallel()
	store := postgres.NewStore(testdb.New(t))
	srv := mailtest.Start(t)
	srv.FailNext(3)
	enqueue(t, store, "bo@example.com", "Hi", "Hello")
	start(t, store, sender(t, srv))
	srv.Wait(t, 1, 10*time.Second)
	waitPending(t, store, 0)
	var attempts int
	if err := store.Pool().QueryRow(context.Background(), `SELECT attempts FROM mail_outbox`).Scan(&attempts); err != nil || attempts != 4 {
		t.Fatalf("attempts %d (%v), want 4", attempts, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// Mail written while no mail server answers waits in PostgreSQL, and a
// dispatcher started later (after a restart) sends it.
func TestTheOutboxSurvivesARestart(t *testing.T) {
	t.Parallel()
	store := postgres.NewStore(testdb.New(t))
	// A mail server that hangs up at once (the port stays taken, so no other
	// test's server can be reached there by mistake).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	down, err := mail.NewSMTP("smtp://"+ln.Addr().String(), "repcue <no-reply@repcue.test>")
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, store, "cy@example.com", "Hi", "Hello")
	_, stop := start(t, store, down, 2*time.Second)
	// The first attempt fails (connection refused) and is scheduled again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var attempts int
		if err := store.Pool().QueryRow(context.Background(), `SELECT attempts FROM mail_outbox`).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		if attempts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt was made")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop() // the process goes away
	waitPending(t, store, 1)

	up := mailtest.Start(t)
	start(t, store, sender(t, up)) // a new process, a mail server back
	if got := up.Wait(t, 1, 10*time.Second); got[0].To != "cy@example.com" {
		t.Fatalf("delivered to %s", got[0].To)
	}
	waitPending(t, store, 0)
}

// Two processes draining one outbox at once never send a message twice
// (FOR UPDATE SKIP LOCKED, the row locked during delivery), and send every one.
func TestTwoDispatchersNeverSendOneMessageTwice(t *testing.T) {
	t.Parallel()
	store := postgres.NewStore(testdb.New(t))
	srv := mailtest.Start(t)
	const n = 40
	for i := range n {
		enqueue(t, store, fmt.Sprintf("user%d@example.com", i), "Hi", "Hello")
	}
	s := sender(t, srv)
	start(t, store, s)
	start(t, store, s)
	srv.Wait(t, n, 30*time.Second)
	waitPending(t, store, 0)
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive by now
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		seen[m.To]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct recipients, want %d", len(seen), n)
	}
	for to, k := range seen {
		if k != 1 {
			t.Fatalf("%s got %d copies", to, k)
		}
	}
}

// A permanent refusal (the server's 5xx) is not retried; an expired message
// is dropped unsent, its body cleared.
func TestPermanentFailuresAndExpiryGiveUp(t *testing.T) {
	t.Parallel()
	store := postgres.NewStore(testdb.New(t))
	srv := mailtest.Start(t)
	enqueue(t, store, "not an address", "Hi", "Hello")
	ctx := context.Background()
	if _, err := store.Pool().Exec(ctx, `
		INSERT INTO mail_outbox (kind, recipient, subject, body, expires_at) VALUES ('test', 'late@example.com', 'Hi', 'secret link', now() - interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	start(t, store, sender(t, srv))
	waitPending(t, store, 0)
	rows, err := store.Pool().Query(ctx, `SELECT recipient, attempts, failed_at IS NOT NULL, body FROM mail_outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var to, body string
		var attempts int
		var failed bool
		if err := rows.Scan(&to, &attempts, &failed, &body); err != nil {
			t.Fatal(err)
		}
		if !failed || body != "" || attempts > 1 {
			t.Fatalf("%s: failed %v, attempts %d, body %q", to, failed, attempts, body)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

func waitPending(t *testing.T, store *postgres.Store, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := store.PendingMail(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages pending, want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
