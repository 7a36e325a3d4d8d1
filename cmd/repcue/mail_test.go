package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repcue/repcue/internal/config"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/testdb"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Without REPCUE_SMTP_URL, a mail's link is written to the log in development
// only; in production the server warns at start that mail is off, and drops
// mail without ever logging its content. With it, mail goes out over SMTP.
func TestMailWithoutSMTP(t *testing.T) {
	t.Parallel()
	store := postgres.NewStore(testdb.New(t))
	const link = "https://app.example.com/reset-password?token=SECRETTOKEN"
	deliver := func(cfg config.Config, to string) string {
		t.Helper()
		var logs lockedBuffer
		d, err := mailDispatcher(cfg, store, slog.New(slog.NewJSONHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.EnqueueMail(context.Background(), postgres.Mail{Kind: "reset", To: to, Subject: "Reset", Body: "Open " + link, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		d.Start(ctx)
		defer func() { cancel(); d.Wait() }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := store.PendingMail(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return logs.String()
			}
			if time.Now().After(deadline) {
				t.Fatal("the mail was never handled")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	prod := deliver(config.Config{MailFrom: "no-reply@localhost"}, "prod@example.com")
	if !strings.Contains(prod, "MAIL IS OFF") {
		t.Errorf("no start-up warning that mail is off: %s", prod)
	}
	if strings.Contains(prod, "SECRETTOKEN") || strings.Contains(prod, "prod@example.com") {
		t.Errorf("production logged the mail: %s", prod)
	}

	dev := deliver(config.Config{MailFrom: "no-reply@localhost", Dev: true}, "dev@example.com")
	if !strings.Contains(dev, link) {
		t.Errorf("development did not log the link: %s", dev)
	}

	// With REPCUE_SMTP_URL the sender is SMTP (internal/mail tests its delivery).
	if _, err := mailDispatcher(config.Config{MailFrom: "no-reply@localhost", SMTPURL: "smtp://u:p@127.0.0.1:2525"}, store, slog.Default()); err != nil {
		t.Errorf("a good REPCUE_SMTP_URL was refused: %v", err)
	}
	if _, err := mailDispatcher(config.Config{MailFrom: "no-reply@localhost", SMTPURL: "smtp://"}, store, slog.Default()); err == nil {
		t.Error("a bad REPCUE_SMTP_URL was accepted")
	}
}
