// Package postgres is repcue's storage: the connection pool, the embedded
// migrations and one store file per aggregate with hand-written SQL. pgx errors
// are translated into domain errors here, once, and nowhere else.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/repcue/repcue/internal/domain"
)

// Store is the database behind every repcue store method.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore wraps a pool created once in main.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool exposes the pool for health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Open connects a pool and checks that the database answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("DATABASE_URL is empty")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.MaxConnLifetimeJitter = 5 * time.Minute
	if !strings.Contains(url, "pool_max_conns") {
		// The live hub commits on up to 4 connections at once; leave as many
		// again for REST requests and lookups (pool_max_conns in the URL overrides).
		cfg.MaxConns = max(cfg.MaxConns, 8)
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// translate maps pgx and PostgreSQL errors to domain errors. what names the
// object for not-found messages.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.NotFound(what)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505": // unique_violation
			return &domain.Error{Code: domain.CodeConflict, Message: what + " already exists", Err: err}
		case "23503": // foreign_key_violation
			return &domain.Error{Code: domain.CodeNotFound, Message: "a referenced object does not exist", Err: err}
		case "23514", "22003", "22007", "22008", "22P02", "22021": // check, out of range, bad datetime, bad text, bad encoding (NUL)
			return &domain.Error{Code: domain.CodeInvalid, Message: "a value is out of range", Err: err}
		case fencedSQLState: // repcue_fence: a set's lease is not held (cluster.go)
			return fencedError(err)
		case "57P01", "57P02", "57P03", "08000", "08003", "08006", "53300":
			return &domain.Error{Code: domain.CodeUnavailable, Message: "database unavailable", RetryAfter: 2 * time.Second, Err: err}
		}
	}
	if pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
		return &domain.Error{Code: domain.CodeUnavailable, Message: "database unavailable", RetryAfter: 2 * time.Second, Err: err}
	}
	return domain.Internal(err)
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}
