package live

import (
	"encoding/json"
	"strconv"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/reptimer"
	"github.com/repcue/repcue/internal/strictjson"
)

// MaxFrameBytes is the largest frame a client may send; larger ones close the
// socket with 1009.
const MaxFrameBytes = 16 << 10

// Client → server frames. Ids are strings so that a malformed one is refused
// naming its field.
type (
	frameType struct {
		Type string `json:"type"`
	}
	subscribeFrame struct {
		Type     string  `json:"type"`
		SetID    string  `json:"set_id"`
		SinceSeq *int64  `json:"since_seq"`
		Epoch    *string `json:"epoch"`
	}
	setFrame struct { // unsubscribe
		Type  string `json:"type"`
		SetID string `json:"set_id"`
	}
	repPhaseFrame struct {
		Type     string `json:"type"`
		SetID    string `json:"set_id"`
		Phase    string `json:"phase"`
		EventID  string `json:"event_id"`
		ClientTS *int64 `json:"client_ts"`
	}
	cueSendFrame struct {
		Type    string  `json:"type"`
		SetID   string  `json:"set_id"`
		CueID   *string `json:"cue_id"`
		Text    *string `json:"text"`
		EventID *string `json:"event_id"` // optional: acknowledged once committed, deduplicated
	}
	mistakeFlagFrame struct {
		Type      string  `json:"type"`
		SetID     string  `json:"set_id"`
		MistakeID string  `json:"mistake_id"`
		EventID   *string `json:"event_id"` // optional, as for cue.send
	}
	cueAckFrame struct {
		Type   string `json:"type"`
		SetID  string `json:"set_id"`
		CueSeq *int64 `json:"cue_seq"`
	}
	setEndFrame struct {
		Type    string `json:"type"`
		SetID   string `json:"set_id"`
		EventID string `json:"event_id"`
	}
	pingFrame struct {
		Type     string `json:"type"`
		ClientTS *int64 `json:"client_ts"`
	}
)

func parseID(field, s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, domain.Invalid(field, "%s is required", field)
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, domain.Invalid(field, "%s must be a UUID", field)
	}
	return id, nil
}

func decodeFrame(data []byte, v any) error { return strictjson.Decode(data, v) }

// Server → client frames that are not numbered.
type (
	snapshotFrame struct {
		Type    string        `json:"type"`
		SetID   uuid.UUID     `json:"set_id"`
		Epoch   string        `json:"epoch"`
		LastSeq int64         `json:"last_seq"`
		State   reptimer.View `json:"state"`
	}
	replayedFrame struct {
		Type    string    `json:"type"`
		SetID   uuid.UUID `json:"set_id"`
		Epoch   string    `json:"epoch"`
		LastSeq int64     `json:"last_seq"`
	}
	holdTickFrame struct {
		Type        string    `json:"type"`
		SetID       uuid.UUID `json:"set_id"`
		Rep         int       `json:"rep"`
		RemainingMS int       `json:"remaining_ms"`
	}
	ackFrame struct {
		Type    string    `json:"type"`
		SetID   uuid.UUID `json:"set_id"`
		EventID uuid.UUID `json:"event_id"`
	}
	setStartedFrame struct {
		Type      string    `json:"type"`
		SetID     uuid.UUID `json:"set_id"`
		AthleteID uuid.UUID `json:"athlete_id"`
	}
	setEndedFrame struct {
		Type    string           `json:"type"`
		SetID   uuid.UUID        `json:"set_id"`
		Summary reptimer.Summary `json:"summary"`
	}
	unsubscribedFrame struct {
		Type   string    `json:"type"`
		SetID  uuid.UUID `json:"set_id"`
		Reason string    `json:"reason"`
	}
	errorFrame struct {
		Type    string      `json:"type"`
		Code    domain.Code `json:"code"`
		Message string      `json:"message"`
		SetID   *string     `json:"set_id"`
		EventID *string     `json:"event_id"`
	}
	pongFrame struct {
		Type     string `json:"type"`
		ClientTS int64  `json:"client_ts"`
		ServerTS int64  `json:"server_ts"`
	}
)

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // every frame type marshals
	}
	return b
}

// encodeBroadcast writes a numbered frame: the common fields, then the fields
// of the rep timer's payload object spliced in.
func encodeBroadcast(f reptimer.Frame, setID uuid.UUID, epoch string) []byte {
	payload := encode(f.Payload)
	// Sized exactly (the fixed text, the type, a set id, the seq's digits,
	// the epoch, the payload): every set keeps its last 256 frames for
	// replays, so spare capacity here would be much of a node's memory.
	const fixed = len(`{"type":"","set_id":"","seq":,"epoch":""`) + 36
	digits := 1
	for v := f.Seq; v >= 10; v /= 10 {
		digits++
	}
	b := make([]byte, 0, fixed+len(f.Type)+digits+len(epoch)+len(payload))
	b = append(b, `{"type":"`...)
	b = append(b, f.Type...)
	b = append(b, `","set_id":"`...)
	b = append(b, setID.String()...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, f.Seq, 10)
	b = append(b, `,"epoch":"`...)
	b = append(b, epoch...)
	b = append(b, '"')
	if len(payload) > 2 { // payload is an object: {"state":{…}} → ,"state":{…}}
		b = append(b, ',')
		b = append(b, payload[1:]...)
	} else {
		b = append(b, '}')
	}
	return b
}

// errorFor builds the error frame for a refused client frame.
func errorFor(err error, setID, eventID string) []byte {
	de := domain.AsError(err)
	msg := de.Message
	if de.Code == domain.CodeInternal {
		msg = "internal error"
	}
	f := errorFrame{Type: "error", Code: de.Code, Message: msg}
	if setID != "" {
		f.SetID = &setID
	}
	if eventID != "" {
		f.EventID = &eventID
	}
	return encode(f)
}
