package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
)

// Several nodes share this database (DESIGN.md §7, migrations/0010_cluster.sql).
// Each node keeps a row alive with its heartbeat; a set's owner holds its lease,
// whose fencing token every commit of the set's events must show; live socket
// counts per node and user make per-account caps hold across nodes. Every time
// comparison uses the database's clock.

// errFenced marks a write refused because the set's lease is not held.
var errFenced = errors.New("set lease not held")

// fencedSQLState is what repcue_fence raises for a lease not held.
const fencedSQLState = "RCF01"

// IsFenced reports whether err is AppendEvents refusing a batch because a set's
// lease is not held (any more) with the token the events carry: another node
// owns the set, or this node's heartbeat lapsed. Unlike a conflict on an
// event's number, the owner should give the set up rather than retry.
func IsFenced(err error) bool { return errors.Is(err, errFenced) }

func fencedError(err error) error {
	return &domain.Error{Code: domain.CodeConflict, Message: "the set's lease moved to another node", Err: errors.Join(errFenced, err)}
}

// forgetNodesAfter is how long a dead node's row and sockets stay after its
// expiry. (Its lease rows name it until another node takes them over: a node
// that comes back keeps the sets nobody took, its tokens still valid.)
const forgetNodesAfter = time.Hour

// Heartbeat keeps node alive for ttl from now (the database's clock),
// registering it on its first beat.
func (s *Store) Heartbeat(ctx context.Context, node uuid.UUID, ttl time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO nodes (id, expires_at) VALUES ($1, now() + $2::interval)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`, node, ttl)
	return translate(err, "node")
}

// ForgetDeadNodes deletes the nodes dead for long, and their socket counts
// (they no longer count anyway; this bounds the tables).
// Best effort, and never waiting: another node sweeping at once skips the
// rows this one has.
func (s *Store) ForgetDeadNodes(ctx context.Context) {
	_, _ = s.pool.Exec(ctx, `
		WITH gone AS (
			DELETE FROM nodes WHERE id IN (SELECT id FROM nodes WHERE expires_at < now() - $1::interval FOR UPDATE SKIP LOCKED)
			RETURNING id)
		DELETE FROM live_sockets WHERE node_id IN (SELECT id FROM gone)`, forgetNodesAfter)
}

// LeaveCluster removes node at once (a SIGTERM): its row goes, its leases are
// released and its sockets no longer count, so other nodes take its sets over
// without waiting for its row to expire. A commit of the node's still under
// way finishes first (its lease rows are locked).
func (s *Store) LeaveCluster(ctx context.Context, node uuid.UUID) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM nodes WHERE id = $1`, node)
		b.Queue(`UPDATE set_leases SET node_id = NULL WHERE node_id = $1`, node)
		b.Queue(`DELETE FROM live_sockets WHERE node_id = $1`, node)
		return tx.SendBatch(ctx, b).Close()
	}), "node")
}

// AcquireLease makes node the owner of a set when no live node holds it (no
// lease, a released one, its holder's row missing or expired, or node itself),
// and returns its new fencing token: greater than every earlier token of the
// set, even when node held it already. When another live node holds it, token
// is 0 and holder and expiresIn tell who and for how long at most (the holder's
// row's remaining life). A missing set is not found.
func (s *Store) AcquireLease(ctx context.Context, setID, node uuid.UUID) (token int64, holder uuid.UUID, expiresIn time.Duration, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// The conflict path locks the lease row whether or not it takes it
		// over, so the holder read next is the one that kept it. Taking it
		// over waits for a commit that holds it (repcue_fence's FOR SHARE).
		err := tx.QueryRow(ctx, `
			INSERT INTO set_leases AS l (set_id, node_id, token)
			SELECT id, $2, 1 FROM sets WHERE id = $1
			ON CONFLICT (set_id) DO UPDATE SET node_id = $2, token = l.token + 1, acquired_at = now()
			WHERE l.node_id IS NULL OR l.node_id = $2
			   OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = l.node_id AND n.expires_at > now())
			RETURNING token`, setID, node).Scan(&token)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var h *uuid.UUID
		var micros int64
		err = tx.QueryRow(ctx, `
			SELECT l.node_id, coalesce((extract(epoch FROM greatest(n.expires_at - now(), '0')) * 1e6)::bigint, 0)
			FROM set_leases l LEFT JOIN nodes n ON n.id = l.node_id WHERE l.set_id = $1`, setID).Scan(&h, &micros)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotFound("set") // no lease row: the insert found no set
		}
		if h != nil { // never nil: the insert's conflict path locked the row, held
			holder = *h
		}
		expiresIn = time.Duration(micros) * time.Microsecond
		return err
	})
	if err != nil {
		return 0, uuid.Nil, 0, translate(err, "set")
	}
	return token, holder, expiresIn, nil
}

// ReleaseLease gives a set's lease up, if it is still held with token; the
// set's next owner need not wait for this node's row to expire.
func (s *Store) ReleaseLease(ctx context.Context, setID uuid.UUID, token int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE set_leases SET node_id = NULL WHERE set_id = $1 AND token = $2 AND node_id IS NOT NULL`, setID, token)
	return translate(err, "lease")
}

// LeaseHolder returns the node holding a set's lease (uuid.Nil: none) and
// whether that node is alive.
func (s *Store) LeaseHolder(ctx context.Context, setID uuid.UUID) (holder uuid.UUID, alive bool, err error) {
	var h *uuid.UUID
	err = s.pool.QueryRow(ctx, `
		SELECT l.node_id, coalesce(n.expires_at > now(), false)
		FROM set_leases l LEFT JOIN nodes n ON n.id = l.node_id WHERE l.set_id = $1`, setID).Scan(&h, &alive)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, translate(err, "lease")
	}
	if h == nil {
		return uuid.Nil, false, nil
	}
	return *h, alive, nil
}

// socketLockClass is the first key of the advisory locks that serialise one
// user's socket reservations (the second is a hash of the user id).
const socketLockClass = 7_315_003

// ReserveSocket counts one more live socket of user on node if the user's
// sockets on all live nodes number fewer than max, and reports whether it did.
// Reservations of one user, from any node, are serialised by an advisory lock
// held to the commit, so bursts never push the sum beyond max.
func (s *Store) ReserveSocket(ctx context.Context, node, user uuid.UUID, max int) (bool, error) {
	var reserved bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The count is a statement of its own, after the lock: its snapshot
		// then holds every reservation committed before.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2::text))`, socketLockClass, user); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO live_sockets AS s (node_id, user_id, n)
			SELECT $1, $2, 1
			WHERE (SELECT coalesce(sum(o.n), 0) FROM live_sockets o JOIN nodes nd ON nd.id = o.node_id
			       WHERE o.user_id = $2 AND nd.expires_at > now()) < $3
			ON CONFLICT (node_id, user_id) DO UPDATE SET n = s.n + 1`, node, user, max)
		reserved = tag.RowsAffected() == 1
		return err
	})
	return reserved, translate(err, "user")
}

// ReleaseSocket counts one live socket of user on node fewer (never below
// zero; a count of zero is no row).
func (s *Store) ReleaseSocket(ctx context.Context, node, user uuid.UUID) error {
	b := &pgx.Batch{}
	b.Queue(`UPDATE live_sockets SET n = n - 1 WHERE node_id = $1 AND user_id = $2 AND n > 0`, node, user)
	// A statement of its own: a reservation committed meanwhile (n back to 1)
	// makes the row fail n = 0 when it is rechecked, and it stays.
	b.Queue(`DELETE FROM live_sockets WHERE node_id = $1 AND user_id = $2 AND n = 0`, node, user)
	return translate(s.pool.SendBatch(ctx, b).Close(), "user")
}

// SocketCount returns user's live sockets on all live nodes.
func (s *Store) SocketCount(ctx context.Context, user uuid.UUID) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(sum(s.n), 0) FROM live_sockets s JOIN nodes nd ON nd.id = s.node_id
		WHERE s.user_id = $1 AND nd.expires_at > now()`, user).Scan(&n)
	return n, translate(err, "user")
}
