// Package testdb gives each test its own real PostgreSQL database, cloned from a
// template that is migrated once per schema version. The server is found the way
// `make test` finds it (internal/devdb): DATABASE_URL, 127.0.0.1:5432, or a
// throwaway cluster. No test is skipped for want of a database: setup fails loudly.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/repcue/repcue/internal/devdb"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/migrations"
)

var (
	once     sync.Once
	server   devdb.Server
	template string
	setupErr error
)

// New returns a pool on a fresh, migrated database that is dropped when the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	once.Do(func() { setupErr = prepareTemplate() })
	if setupErr != nil {
		t.Fatalf("testdb: %v", setupErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "repcue_test_" + randomHex(6)
	admin, err := pgx.Connect(ctx, server.URL(adminDB()))
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer admin.Close(ctx)
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template)
		var pg *pgconn.PgError
		if err == nil || !errors.As(err, &pg) || pg.Code != "55006" || attempt > 50 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the template is busy with another clone
	}
	if err != nil {
		t.Fatalf("testdb: create %s: %v", name, err)
	}
	pool, err := postgres.Open(ctx, server.URL(name))
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, server.URL(adminDB())); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return pool
}

func adminDB() string {
	if server.Source == "DATABASE_URL" {
		return server.DatabaseName()
	}
	return "postgres"
}

// prepareTemplate migrates a template database named after the migrations'
// content, once, under an advisory lock shared by every test binary.
func prepareTemplate() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	server, err = devdb.Find(ctx, func(string, ...any) {})
	if err != nil {
		return err
	}
	template = "repcue_tmpl_" + migrationsHash()
	admin, err := pgx.Connect(ctx, server.URL(adminDB()))
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7315002612)"); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(7315002612)") //nolint:errcheck
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", template).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+template+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+template); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, server.URL(template))
	if err != nil {
		return err
	}
	_, err = postgres.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, "ALTER DATABASE "+template+" WITH IS_TEMPLATE true")
	return err
}

func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Admin connects to the server's maintenance database, for tests that must act
// on their own database from outside it (cut it off, say). Closed at cleanup.
func Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	once.Do(func() { setupErr = prepareTemplate() })
	if setupErr != nil {
		t.Fatalf("testdb: %v", setupErr)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, server.URL(adminDB()))
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
