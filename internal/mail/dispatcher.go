package mail

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/repcue/repcue/internal/postgres"
)

// MaxAttempts is how often a message is tried before it is given up (its
// link expiring first ends it sooner).
const MaxAttempts = 8

// backoff is the wait after the n-th failed attempt: 5 s doubling, at most 10 min.
func backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

// Dispatcher delivers the outbox: it looks for due messages every Poll (and
// at once when kicked after a commit), one at a time, each under its row's lock.
type Dispatcher struct {
	store  *postgres.Store
	sender Sender
	log    *slog.Logger
	poll   time.Duration
	kick   chan struct{}
	// Backoff is the wait after the n-th failed attempt; replaced in tests.
	Backoff func(n int) time.Duration

	wg sync.WaitGroup
}

// NewDispatcher makes a dispatcher; poll 0 means 2 s.
func NewDispatcher(store *postgres.Store, sender Sender, log *slog.Logger, poll time.Duration) *Dispatcher {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	return &Dispatcher{store: store, sender: sender, log: log, poll: poll, kick: make(chan struct{}, 1), Backoff: backoff}
}

// Kick asks for a look at the outbox now (a message was just committed).
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Start runs the dispatcher until ctx ends; Wait waits for it to stop.
func (d *Dispatcher) Start(ctx context.Context) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.run(ctx)
	}()
}

// Wait returns once the dispatcher started by Start has stopped.
func (d *Dispatcher) Wait() { d.wg.Wait() }

func (d *Dispatcher) run(ctx context.Context) {
	t := time.NewTicker(d.poll)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		if time.Since(lastSweep) > time.Minute {
			lastSweep = time.Now()
			if err := d.store.SweepMail(ctx, 7*24*time.Hour); err != nil && ctx.Err() == nil {
				d.log.Warn("sweeping the mail outbox failed", "err", err)
			}
		}
		d.drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// drain delivers due messages until none is left (or the database fails).
func (d *Dispatcher) drain(ctx context.Context) {
	for ctx.Err() == nil {
		found, err := d.store.DeliverNextMail(ctx, func(m postgres.OutboxMessage) postgres.MailOutcome {
			return d.deliver(ctx, m)
		})
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("mail outbox unavailable", "err", err)
			}
			return
		}
		if !found {
			return
		}
	}
}

func (d *Dispatcher) deliver(ctx context.Context, m postgres.OutboxMessage) postgres.MailOutcome {
	err := d.sender.Send(ctx, Message{To: m.To, Subject: m.Subject, Body: m.Body})
	if err == nil {
		d.log.Info("mail sent", "id", m.ID, "kind", m.Kind)
		return postgres.MailOutcome{Sent: true}
	}
	attempt := m.Attempts + 1
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	if errors.Is(err, ErrPermanent) || attempt >= MaxAttempts {
		d.log.Error("mail given up", "id", m.ID, "kind", m.Kind, "attempt", attempt, "err", err)
		return postgres.MailOutcome{GiveUp: true, LastError: msg}
	}
	wait := d.Backoff(attempt)
	d.log.Warn("mail not sent, will retry", "id", m.ID, "kind", m.Kind, "attempt", attempt, "retry_in", wait.String(), "err", err)
	return postgres.MailOutcome{RetryIn: wait, LastError: msg}
}

// DevLog is the Sender of development without SMTP (REPCUE_DEV): it writes the
// message, link included, to the log instead. Never used in production.
type DevLog struct{ Log *slog.Logger }

// Send logs the message.
func (l DevLog) Send(_ context.Context, m Message) error {
	l.Log.Warn("mail not sent (REPCUE_SMTP_URL unset, development): here it is", "to", m.To, "subject", m.Subject, "body", m.Body)
	return nil
}

// Off is the Sender of production without SMTP: messages are dropped, their
// content is never logged.
type Off struct{}

// Send refuses for good.
func (Off) Send(context.Context, Message) error {
	return errors.Join(ErrPermanent, errors.New("mail is off: REPCUE_SMTP_URL is not set"))
}
