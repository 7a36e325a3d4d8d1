package live

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/reptimer"
)

// A command is everything that asks a set's owner to do something: a socket's
// frame, a REST upload or end, a watcher's keep-alive. It is a plain value, so
// that it reaches the owner the same way from this node (its inbox) or from
// another one (the bus), and it says where its answers go.
type command struct {
	Kind  cmdKind   `json:"k"`
	Set   uuid.UUID `json:"s"`
	Actor uuid.UUID `json:"a"` // the authorised user (checked by the node that read the frame)
	From  address   `json:"f"` // where the ack, error, sync or result goes
	At    time.Time `json:"t"` // when the node received it: server time drives live sets

	EventID    uuid.UUID  `json:"e,omitzero"` // the frame's event_id (rep.phase, set.end, and coach frames that carry one)
	RawEventID string     `json:"re,omitempty"`
	Phase      string     `json:"p,omitempty"`
	ClientTS   *int64     `json:"ct,omitempty"`
	CueID      *uuid.UUID `json:"c,omitempty"`
	MistakeID  *uuid.UUID `json:"m,omitempty"`
	Text       string     `json:"x,omitempty"`
	CueSeq     int64      `json:"q,omitempty"`
	Since      *int64     `json:"si,omitempty"`
	Epoch      *string    `json:"ep,omitempty"`

	Upload []UploadEvent `json:"u,omitempty"`
	Hops   uint8         `json:"h,omitempty"` // times it was forwarded after a failed claim

	// run is for this node's own housekeeping (a barrier before shutdown):
	// it never crosses the network.
	run func(*owner) `json:"-"`
}

type cmdKind uint8

const (
	cmdSubscribe cmdKind = iota + 1 // a socket starts watching: answered with a sync
	cmdPhase                        // rep.phase
	cmdEndFrame                     // set.end from the athlete's socket
	cmdCue                          // cue.send
	cmdMistake                      // mistake.flag
	cmdCueAck                       // cue.ack
	cmdWatch                        // a node still has sockets watching the set
	cmdUpload                       // REST upload of offline events: answered with a result
	cmdEnd                          // REST end: answered with a result
	cmdRun                          // local housekeeping (run)
)

// An address is where an owner's answer to a command goes: a socket on a
// node, or a REST call waiting on a node.
type address struct {
	Node   uuid.UUID `json:"n"`
	Socket uint64    `json:"s,omitempty"`
	Call   uint64    `json:"c,omitempty"`
}

// result is the answer to a REST command (upload or end).
type result struct {
	Upload  UploadResult     `json:"u"`
	Summary reptimer.Summary `json:"s"`
	Err     *wireError       `json:"e,omitempty"`
}

// sync is an owner's answer to a subscribe: the frames the socket needs
// (a replay and its `replayed`, or a snapshot), and where they leave it.
type syncMsg struct {
	Set     uuid.UUID         `json:"s"`
	Socket  uint64            `json:"k"`
	Epoch   string            `json:"e"`
	LastSeq int64             `json:"l"`
	Frames  []json.RawMessage `json:"f"`
	Replay  bool              `json:"r,omitempty"` // frames are a replay (may not fit the socket's queue)
}
