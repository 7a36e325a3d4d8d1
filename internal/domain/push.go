package domain

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DeviceKindWebPush is a browser's Web Push subscription (RFC 8030, VAPID).
// Native apps would register other kinds (APNs, FCM tokens); see internal/push.
const DeviceKindWebPush = "webpush"

// Device is a push endpoint a user registered. Its keys never leave the server.
type Device struct {
	ID        uuid.UUID `json:"id"`
	Kind      string    `json:"kind"`
	Endpoint  string    `json:"endpoint"`
	CreatedAt Time      `json:"created_at"`
	UserID    uuid.UUID `json:"-"`
	P256dh    string    `json:"-"` // the browser's ECDH public key, base64url
	Auth      string    `json:"-"` // the browser's authentication secret, base64url
}

// Notice types: what a push announces.
const (
	NoticePrescription = "prescription.created"
	NoticeFeedback     = "feedback.created"
	NoticeSetStarted   = "set.started"
)

// Notice is the payload of a push message: small JSON a phone or browser shows
// as it is, with the ids to open. It never carries a secret.
type Notice struct {
	Type           string     `json:"type"`
	Title          string     `json:"title"`
	Body           string     `json:"body"`
	AthleteID      *uuid.UUID `json:"athlete_id,omitempty"`
	SetID          *uuid.UUID `json:"set_id,omitempty"`
	PrescriptionID *uuid.UUID `json:"prescription_id,omitempty"`
	FeedbackID     *uuid.UUID `json:"feedback_id,omitempty"`
	// Urgency is the Web Push Urgency (RFC 8030 §5.3): very-low, low, normal or high.
	Urgency string `json:"-"`
	// TTL is how long the notice is worth delivering; after it, it is dropped.
	TTL time.Duration `json:"-"`
}

// PrescriptionNotice tells an athlete that a coach prescribed something.
func PrescriptionNotice(p Prescription, coachName, variationName string) Notice {
	return Notice{
		Type:           NoticePrescription,
		Title:          "New prescription from " + coachName,
		Body:           fmt.Sprintf("%s: %d × %d at %s kg on %s", variationName, p.Sets, p.Reps, kg(p.LoadKg), p.ScheduledOn),
		PrescriptionID: &p.ID,
		Urgency:        "normal",
		TTL:            7 * 24 * time.Hour,
	}
}

// FeedbackNotice tells an athlete that a coach commented on a set.
func FeedbackNotice(f Feedback, coachName string) Notice {
	return Notice{
		Type:       NoticeFeedback,
		Title:      "Feedback from " + coachName,
		Body:       excerpt(f.Text, 140),
		SetID:      &f.SetID,
		FeedbackID: &f.ID,
		Urgency:    "normal",
		TTL:        7 * 24 * time.Hour,
	}
}

// SetStartedNotice tells a coach that an athlete began a set. It is urgent and
// short-lived: an hour later the set is over and the notice is noise.
func SetStartedNotice(s Set, athleteName, variationName string) Notice {
	return Notice{
		Type:      NoticeSetStarted,
		Title:     athleteName + " started a set",
		Body:      fmt.Sprintf("%s: %d reps at %s kg", variationName, s.TargetReps, kg(s.LoadKG)),
		AthleteID: &s.AthleteID,
		SetID:     &s.ID,
		Urgency:   "high",
		TTL:       15 * time.Minute,
	}
}

func kg(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// excerpt cuts s to at most n runes, on a word boundary when one is near.
func excerpt(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	cut := string(r)
	if i := strings.LastIndexAny(cut, " \n\t"); i > len(cut)/2 {
		cut = cut[:i]
	}
	return strings.TrimSpace(cut) + "…"
}

// PushMessage is one outbox row claimed for sending: a payload for a device.
type PushMessage struct {
	ID        int64
	Device    Device
	Payload   []byte
	Urgency   string
	Attempts  int // sends tried before this one
	ExpiresAt time.Time
}

// PushOutcome is what became of one send.
type PushOutcome int

const (
	PushSent    PushOutcome = iota // delivered to the push service: remove the row
	PushRetry                      // try again after RetryIn
	PushDropped                    // refused for good, expired or out of attempts: remove the row
	PushGone                       // the endpoint no longer exists (404/410): remove the device
)

// PushResult records one send's outcome.
type PushResult struct {
	Outcome PushOutcome
	RetryIn time.Duration
	Error   string // why it failed, for the row and the logs; never shown to clients
}
