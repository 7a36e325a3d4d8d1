package live

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
)

// A Bus carries what crosses between the nodes of a cluster (DESIGN.md §7):
// commands to the node that owns a set, a set's frames to the nodes whose
// sockets watch it, answers to one node's socket or REST call, and per-user
// notices to every node. What stays on one node never touches it: the hub
// delivers to its own sockets and owners directly, so a set whose athlete and
// watchers share its owner's node works while the bus is down.
//
// Solo is the bus of a single node (there is no other node to reach); NATS
// (natsbus.go) is the bus of a cluster.
type Bus interface {
	// Start begins receiving what other nodes send this node.
	Start(node uuid.UUID, to Receiver) error
	// Forward hands a command to the node that owns its set. It returns
	// errNoOwner when no node serves the set, errOwnerSilent when the node
	// that does never answered, errBusDown when the bus cannot reach other
	// nodes, or the owner's refusal (a busy inbox).
	Forward(cmd command) error
	// Own makes this node answer the commands forwarded for a set, until stop.
	Own(set uuid.UUID) (stop func())
	// Publish sends a set's frame to every other node watching the set.
	Publish(set uuid.UUID, f busFrame)
	// Watch makes this node receive the set's frames published elsewhere, until stop.
	Watch(set uuid.UUID) (stop func())
	// Send delivers a message to one other node.
	Send(node uuid.UUID, m nodeMsg) error
	// Notify sends a per-user notice to every other node.
	Notify(n notice)
	// Ready says whether other nodes can be reached (nil: yes).
	Ready() error
	Close()
}

// Receiver is what a node does with what the bus brings it.
type Receiver interface {
	command(cmd command) error       // a command for a set this node owns
	frame(set uuid.UUID, f busFrame) // a frame of a set this node watches
	message(m nodeMsg)               // an answer for one of this node's sockets or calls
	notice(n notice)                 // a per-user notice
}

// busFrame is one frame of a set as it travels: a broadcast frame (Seq > 0),
// a hold.tick (Seq 0), or an owner's announcement that the set has a new
// epoch (Data nil, Seq the epoch's latest seq).
type busFrame struct {
	Seq   int64
	Epoch string
	Data  []byte
}

// nodeMsg is an answer for one node: a frame for a socket, a socket's sync,
// a REST call's result, or a command to route again (its set moved there).
type nodeMsg struct {
	Socket  uint64          `json:"k,omitempty"`
	Unwatch uuid.UUID       `json:"u,omitzero"` // the socket no longer watches this set (its subscribe was refused)
	Frame   json.RawMessage `json:"f,omitempty"`
	Sync    *syncMsg        `json:"s,omitempty"`
	Call    uint64          `json:"c,omitempty"`
	Result  *result         `json:"r,omitempty"`
	Reroute *command        `json:"rr,omitempty"` // the set moved to this node: route the command again here
}

// notice is a per-user notice that every node delivers to its own sockets of
// the users: a frame (set.started, set.ended to those not watching the set),
// an unlink, or a close (4001).
type notice struct {
	Users        []uuid.UUID     `json:"u"`
	Frame        json.RawMessage `json:"f,omitempty"`
	SkipWatchers uuid.UUID       `json:"w,omitzero"` // sockets watching this set already got the broadcast
	Unlinked     uuid.UUID       `json:"l,omitzero"` // the athlete the (coach) users were unlinked from
	Close        int             `json:"c,omitempty"`
	Reason       string          `json:"r,omitempty"`
}

// wireError is a domain error as it crosses the bus.
type wireError struct {
	Code         domain.Code `json:"code"`
	Message      string      `json:"message"`
	RetryAfterMS int64       `json:"retry_after_ms,omitempty"`
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	de := domain.AsError(err)
	return &wireError{Code: de.Code, Message: de.Message, RetryAfterMS: de.RetryAfter.Milliseconds()}
}

func (w *wireError) err() error {
	if w == nil {
		return nil
	}
	return &domain.Error{Code: w.Code, Message: w.Message, RetryAfter: time.Duration(w.RetryAfterMS) * time.Millisecond}
}

var (
	errNoOwner = errors.New("no node owns the set")
	// errOwnerSilent: the node that serves the set did not take the command
	// in time (paused, or cut off while NATS still lists it).
	errOwnerSilent = &domain.Error{Code: domain.CodeUnavailable, Message: "the server running this set did not answer, try again", RetryAfter: time.Second}
	errBusDown     = &domain.Error{Code: domain.CodeUnavailable, Message: "this set is live on another server that cannot be reached now, try again", RetryAfter: 2 * time.Second}
)

// Solo is the bus of a single node: there is no other node, so nothing is sent
// and no command is ever owned elsewhere.
type Solo struct{}

func (Solo) Start(uuid.UUID, Receiver) error { return nil }
func (Solo) Forward(command) error           { return errNoOwner }
func (Solo) Own(uuid.UUID) func()            { return func() {} }
func (Solo) Publish(uuid.UUID, busFrame)     {}
func (Solo) Watch(uuid.UUID) func()          { return func() {} }
func (Solo) Send(uuid.UUID, nodeMsg) error   { return errBusDown }
func (Solo) Notify(notice)                   {}
func (Solo) Ready() error                    { return nil }
func (Solo) Close()                          {}
