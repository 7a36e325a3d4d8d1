package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
)

// The library's version rises once per transaction that changes the library,
// however many rows it changes, and FindExerciseBySlug reports the version of
// its own snapshot.
func TestLibraryVersionRisesOncePerChange(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	version := func() int64 {
		t.Helper()
		v, err := s.LibraryVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	e, at, err := s.FindExerciseBySlug(ctx, "hip-thrust")
	if err != nil || at != v0 {
		t.Fatalf("read at version %d, current %d: %v", at, v0, err)
	}
	admin := mkUser(t, s, domain.RoleAdmin)
	if _, err := s.UpdateCue(ctx, admin.ID, e.Cues[0].ID, domain.VersionMatch{Any: true}, postgres.CuePatch{Text: ptr("Edited")}); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0+1 {
		t.Fatalf("after one edit: %d, want %d", v, v0+1)
	}
	// Many rows of several tables in one transaction: one raise.
	err = pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		for _, q := range []string{`UPDATE cues SET priority = priority + 1`, `UPDATE mistakes SET fix = fix || '.'`, `UPDATE focus_points SET detail = detail || '.'`} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0+2 {
		t.Fatalf("after one transaction of many rows: %d, want %d", v, v0+2)
	}
	// Rolled back, or changing nothing, or only reading: no raise.
	_ = pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		_, _ = tx.Exec(ctx, `UPDATE cues SET priority = 0`)
		return fmt.Errorf("roll back")
	})
	if _, err := s.Pool().Exec(ctx, `UPDATE cues SET text = 'x' WHERE id = $1`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FindExerciseBySlug(ctx, "hip-thrust"); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0+2 {
		t.Fatalf("after a rollback, an update of no row and a read: %d, want %d", v, v0+2)
	}
}

// Admin edits of cues and of mistakes linking those cues, at once, all succeed:
// the version's row is locked only at commit, after every other lock, so it
// cannot close a cycle of locks (a cue edit holds its cue and waits for the
// version; a mistake edit linking that cue would hold the version and wait for
// the cue).
func TestConcurrentLibraryEditsDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	admin := mkUser(t, s, domain.RoleAdmin)
	e, v0, err := s.FindExerciseBySlug(ctx, "hip-thrust")
	if err != nil {
		t.Fatal(err)
	}
	var mistakes []uuid.UUID
	for _, m := range e.Mistakes {
		mistakes = append(mistakes, m.ID)
	}
	cues := []uuid.UUID{e.Cues[0].ID, e.Cues[1].ID}
	const rounds = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds*len(mistakes))
	for i := range rounds {
		for j, id := range mistakes {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := s.UpdateCue(ctx, admin.ID, cues[(i+j)%2], domain.VersionMatch{Any: true}, postgres.CuePatch{Priority: ptr(i)})
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := s.UpdateMistake(ctx, admin.ID, id, domain.VersionMatch{Any: true}, postgres.MistakePatch{CueIDs: []uuid.UUID{cues[(i+j+1)%2], cues[(i+j)%2]}})
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent edit failed: %v", err)
		}
		n++
	}
	v, err := s.LibraryVersion(ctx)
	if err != nil || v != v0+int64(n) {
		t.Fatalf("version %d after %d edits from %d: %v", v, n, v0, err)
	}
}

func ptr[T any](v T) *T { return &v }
