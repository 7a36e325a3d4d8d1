// Package push owns push notifications: the Sender interface with its Web Push
// implementation, the VAPID key, the rules for a subscription, and the worker
// that drains the PostgreSQL outbox.
//
// Messages are written to the outbox (push_outbox) by the store in the same
// transaction as what they announce, so a push is sent if and only if that
// commits, and survives a restart in between. The worker claims due rows with
// FOR UPDATE SKIP LOCKED and holds them while it sends, so any number of
// processes may run it against one database without sending a row twice. A
// failed send is retried with exponential backoff up to MaxAttempts; an
// endpoint the push service no longer knows (404/410) is removed with
// everything queued for it.
//
// Native apps: Apple's APNs and Google's FCM would be further Senders, keyed by
// the device's kind ("apns", "fcm") in Config.Senders, with their own
// credentials (an APNs .p8 key, an FCM service account) and registration body
// (a device token instead of a Web Push subscription). They are not built: a
// browser (and the coach dashboard) uses Web Push, and so can an app's web view.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/repcue/repcue/internal/domain"
)

// Message is what a Sender delivers: the JSON payload (a domain.Notice), how
// urgent it is and when it stops being worth delivering.
type Message struct {
	Payload   []byte
	Urgency   string
	ExpiresAt time.Time
}

// Sender delivers a message to one device of its kind. It returns nil once the
// push service has accepted the message; an error wrapping ErrGone when the
// device no longer exists; a *RefusedError when retrying cannot help; any
// other error (a *TemporaryError, a network failure) is retried.
type Sender interface {
	Send(ctx context.Context, d domain.Device, m Message) error
}

// ErrGone says the push service no longer knows the device (404 or 410).
var ErrGone = errors.New("the push endpoint is gone")

// RefusedError is a push service's refusal that retrying will not change
// (400 bad request, 401/403 VAPID mismatch, 413 too large…).
type RefusedError struct{ Status int }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("push service refused the message: %d", e.Status)
}

// TemporaryError is a push service's answer worth retrying (429, 5xx).
type TemporaryError struct {
	Status     int
	RetryAfter time.Duration // from Retry-After; 0 if none
}

func (e *TemporaryError) Error() string { return fmt.Sprintf("push service answered %d", e.Status) }

// Outbox is the queue of messages, kept in PostgreSQL (postgres.Store).
type Outbox interface {
	// ProcessPushes claims up to limit due messages, calls send with them while
	// they stay claimed, and records the results (one per message, in order).
	ProcessPushes(ctx context.Context, limit int, send func(context.Context, []domain.PushMessage) []domain.PushResult) (int, error)
}

// Config tunes the worker; zero values take the defaults.
type Config struct {
	Senders     map[string]Sender // by device kind
	Batch       int               // messages claimed at once (32)
	Parallel    int               // sends at once within a batch (8)
	Poll        time.Duration     // how often the outbox is looked at without a Wake (1s)
	MaxAttempts int               // sends tried before a message is dropped (8)
	Backoff     time.Duration     // wait after the first failure, doubled each time (10s)
	MaxBackoff  time.Duration     // the longest wait between attempts (1h)
	SendTimeout time.Duration     // bound on one send (10s)
}

// Worker drains the outbox. Run it in every server process.
type Worker struct {
	outbox Outbox
	cfg    Config
	log    *slog.Logger
	wake   chan struct{}
}

// NewWorker makes a worker; it does nothing until Run.
func NewWorker(outbox Outbox, cfg Config, log *slog.Logger) *Worker {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Poll, time.Second)
	def(&cfg.Backoff, 10*time.Second)
	def(&cfg.MaxBackoff, time.Hour)
	def(&cfg.SendTimeout, 10*time.Second)
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	return &Worker{outbox: outbox, cfg: cfg, log: log, wake: make(chan struct{}, 1)}
}

// Wake has the worker look at the outbox now (after a commit that queued
// something) rather than at its next poll. It never blocks; nil is a no-op.
func (w *Worker) Wake() {
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends. A send under way when it ends is abandoned: its
// row stays queued and is sent again by the next worker to claim it.
func (w *Worker) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.wake:
		}
		// Drain: a full batch means more may be waiting.
		for ctx.Err() == nil {
			n, err := w.outbox.ProcessPushes(ctx, w.cfg.Batch, w.send)
			if err != nil && ctx.Err() == nil {
				w.log.Warn("push outbox unavailable", "err", err)
			}
			if err != nil || n < w.cfg.Batch {
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(w.cfg.Poll)
	}
}

// send delivers a batch, at most Parallel at once, and says what became of each.
func (w *Worker) send(ctx context.Context, msgs []domain.PushMessage) []domain.PushResult {
	results := make([]domain.PushResult, len(msgs))
	sem := make(chan struct{}, w.cfg.Parallel)
	var wg sync.WaitGroup
	for i, m := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = w.sendOne(ctx, m)
		}()
	}
	wg.Wait()
	return results
}

func (w *Worker) sendOne(ctx context.Context, m domain.PushMessage) domain.PushResult {
	sender, ok := w.cfg.Senders[m.Device.Kind]
	if !ok {
		w.log.Error("no push sender for this kind of device", "kind", m.Device.Kind, "device", m.Device.ID)
		return domain.PushResult{Outcome: domain.PushDropped}
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	defer cancel()
	err := sender.Send(ctx, m.Device, Message{Payload: m.Payload, Urgency: m.Urgency, ExpiresAt: m.ExpiresAt})
	var refused *RefusedError
	switch {
	case err == nil:
		return domain.PushResult{Outcome: domain.PushSent}
	case errors.Is(err, ErrGone):
		w.log.Info("push endpoint gone: device removed", "device", m.Device.ID, "user", m.Device.UserID)
		return domain.PushResult{Outcome: domain.PushGone}
	case errors.As(err, &refused):
		w.log.Warn("push refused: message dropped", "device", m.Device.ID, "status", refused.Status)
		return domain.PushResult{Outcome: domain.PushDropped, Error: err.Error()}
	case m.Attempts+1 >= w.cfg.MaxAttempts:
		w.log.Warn("push failed too often: message dropped", "device", m.Device.ID, "attempts", m.Attempts+1, "err", err)
		return domain.PushResult{Outcome: domain.PushDropped, Error: err.Error()}
	}
	wait := w.backoff(m.Attempts)
	var temp *TemporaryError
	if errors.As(err, &temp) && temp.RetryAfter > wait {
		wait = min(temp.RetryAfter, w.cfg.MaxBackoff)
	}
	w.log.Info("push failed: will retry", "device", m.Device.ID, "attempt", m.Attempts+1, "retry_in", wait.String(), "err", err)
	return domain.PushResult{Outcome: domain.PushRetry, RetryIn: wait, Error: err.Error()}
}

// backoff is the wait after the (attempts+1)-th failure: Backoff doubled per
// earlier failure, capped at MaxBackoff, with up to a quarter of jitter so
// that messages failing together do not all come back together.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.cfg.Backoff
	for range attempts {
		if d >= w.cfg.MaxBackoff/2 {
			d = w.cfg.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}
