//go:build progressscale

package httpapi_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The progress endpoints at scale: a year of a coach with 50 athletes, seeded
// with COPY, then every endpoint timed over real HTTP on loopback, and the
// query plans printed. A load measurement, not part of `make test` (it takes a
// minute): it builds only with the progressscale tag,
//
//	go test -tags progressscale -run TestProgressAtScale -v -timeout 15m ./internal/httpapi/
//
// docs/progress-queries.md holds a run's figures and plans.
var scaleCalls = flag.Int("progress-scale-calls", 300, "timed calls per endpoint (after 20 warm-up calls)")

const scaleAthletes = 50

func TestProgressAtScale(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	pool := h.store.Pool()
	co := h.register("coach")
	first := h.register("athlete") // signed in, to time an athlete reading its own progress
	athletes := []uuid.UUID{uuid.MustParse(first.ID)}
	for i := 1; i < scaleAthletes; i++ {
		var id uuid.UUID
		if err := pool.QueryRow(ctx, `INSERT INTO users (email, display_name, role, password_hash) VALUES ($1, $2, 'athlete', 'x') RETURNING id`,
			fmt.Sprintf("scale-%d@example.com", i), fmt.Sprintf("Athlete %02d", i)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		athletes = append(athletes, id)
	}
	for _, a := range athletes {
		if _, err := pool.Exec(ctx, `INSERT INTO coach_links (coach_id, athlete_id) VALUES ($1, $2)`, co.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	seedStart := time.Now()
	counts := seedYear(t, pool, athletes, time.Now().UTC())
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil { // the steady state autovacuum keeps: visibility map set, statistics fresh
		t.Fatal(err)
	}
	t.Logf("seeded %v in %v", counts, time.Since(seedStart).Round(time.Millisecond))

	addr := h.listen()
	today := time.Now().UTC().Format(time.DateOnly)
	yearAgo := time.Now().UTC().AddDate(-1, 0, 1).Format(time.DateOnly)
	athlete := func(i int) string { return athletes[i%len(athletes)].String() }
	endpoints := []struct {
		name, method string
		path         func(i int) string
		body         string
		token        string
	}{
		{"GET progression (coach)", "GET", func(i int) string { return "/v1/athletes/" + athlete(i) + "/progression?exercise=hip-thrust" }, "", co.Access},
		{"GET progression (athlete, own)", "GET", func(int) string { return "/v1/athletes/" + first.ID + "/progression?exercise=hip-thrust" }, "", first.Access},
		{"POST progression/prescribe (4 weeks)", "POST", func(i int) string { return "/v1/athletes/" + athlete(i) + "/progression/prescribe" },
			`{"exercise":"hip-thrust","scheduled_on":"` + today + `","repeat_weeks":4}`, co.Access},
		{"GET insights (12 weeks)", "GET", func(i int) string { return "/v1/athletes/" + athlete(i) + "/insights" }, "", co.Access},
		{"GET insights (a year)", "GET", func(i int) string { return "/v1/athletes/" + athlete(i) + "/insights?from=" + yearAgo + "&to=" + today }, "", co.Access},
		{"GET cue-effectiveness (28 days, 50 athletes)", "GET", func(int) string { return "/v1/coach/cue-effectiveness" }, "", co.Access},
		{"GET cue-effectiveness (28 days, one athlete)", "GET", func(i int) string { return "/v1/coach/cue-effectiveness?athlete_id=" + athlete(i) }, "", co.Access},
		{"GET cue-effectiveness (a year, 50 athletes)", "GET", func(int) string { return "/v1/coach/cue-effectiveness?from=" + yearAgo + "&to=" + today }, "", co.Access},
		{"GET overview (50 athletes)", "GET", func(int) string { return "/v1/coach/overview" }, "", co.Access},
		{"GET sets.csv (12 weeks)", "GET", func(i int) string { return "/v1/athletes/" + athlete(i) + "/sets.csv" }, "", co.Access},
		{"GET sets.csv (a year)", "GET", func(i int) string { return "/v1/athletes/" + athlete(i) + "/sets.csv?from=" + yearAgo + "&to=" + today }, "", co.Access},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var report strings.Builder
	fmt.Fprintf(&report, "| endpoint | p50 | p99 | max |\n|---|---|---|---|\n")
	for _, ep := range endpoints {
		var took []time.Duration
		for i := 0; i < 20+*scaleCalls; i++ {
			var body io.Reader
			if ep.body != "" {
				body = strings.NewReader(ep.body)
			}
			req, _ := http.NewRequest(ep.method, "http://"+addr+ep.path(i), body)
			req.Header.Set("Authorization", "Bearer "+ep.token)
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			start := time.Now()
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			d := time.Since(start)
			if res.StatusCode >= 300 {
				t.Fatalf("%s: %d %s", ep.name, res.StatusCode, b)
			}
			if i >= 20 {
				took = append(took, d)
			}
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		p := func(q float64) time.Duration { return took[int(q*float64(len(took)-1))].Round(10 * time.Microsecond) }
		line := fmt.Sprintf("| %s | %v | %v | %v |\n", ep.name, p(0.50), p(0.99), took[len(took)-1].Round(10*time.Microsecond))
		t.Log(line)
		report.WriteString(line)
	}
	t.Logf("latency over %d calls each (loopback HTTP, sequential):\n%s", *scaleCalls, report.String())

	// The plans, with the arguments the endpoints pass.
	a0 := athletes[0]
	var exID uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT id FROM exercises WHERE slug = 'hip-thrust'`).Scan(&exID); err != nil {
		t.Fatal(err)
	}
	var barbell uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT id FROM variations WHERE slug = 'single-leg-hip-thrust'`).Scan(&barbell); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(24 * time.Hour)
	weeks12 := now.AddDate(0, 0, -7*12)
	plans := []struct {
		name string
		args []any
	}{
		{"progress_sets", []any{[]uuid.UUID{a0}, exID, 3}},
		{"progress_sets", []any{athletes, nil, 3}},
		{"side_figures", []any{a0, barbell, now.AddDate(0, 0, -13), now}},
		{"insight_sets", []any{a0, weeks12, now, exID}},
		{"insight_tempo", []any{a0, weeks12, now, exID}},
		{"insight_mistakes", []any{a0, weeks12, now, exID}},
		{"baseline", []any{athletes, now.AddDate(0, 0, -27), now}},
		{"cue_groups", []any{athletes, now.AddDate(0, 0, -27), now.AddDate(0, 0, 1)}},
		{"overview", []any{uuid.MustParse(co.ID), now.AddDate(0, 0, -13), now.AddDate(0, 0, -6), now}},
		{"csv", []any{a0, weeks12, now}},
	}
	for _, p := range plans {
		plan, err := h.store.Explain(ctx, p.name, p.args...)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		t.Logf("EXPLAIN %s:\n%s", p.name, manyIDs.ReplaceAllString(plan, "'{…the 50 athletes' ids…}'"))
	}
}

// manyIDs is an array of many uuids in a plan, shortened for reading.
var manyIDs = regexp.MustCompile(`'\{[0-9a-f,-]{300,}\}'`)

// seedYear writes a year of ended sets for the athletes straight into the
// tables (COPY): about 500 sets of 12 reps per athlete, the ladder climbed over
// the year, a missed pause now and then with the timer's cue after it, a coach
// cue in most sets, and receipts for half of those.
func seedYear(t *testing.T, pool interface {
	CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}, athletes []uuid.UUID, now time.Time) map[string]int {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(9))
	vars := map[string]uuid.UUID{}
	for _, slug := range []string{"bodyweight-hip-thrust", "dumbbell-hip-thrust", "barbell-hip-thrust", "single-leg-hip-thrust"} {
		var id uuid.UUID
		if err := pool.QueryRow(ctx, `SELECT id FROM variations WHERE slug = $1`, slug).Scan(&id); err != nil {
			t.Fatal(err)
		}
		vars[slug] = id
	}
	exID := uuid.MustParse("a1f0c3d2-0000-4000-8000-000000000001")
	noPause := uuid.MustParse("a1f0c3d2-0000-4000-8000-0000000000d4")
	pauseCue := uuid.MustParse("a1f0c3d2-0000-4000-8000-0000000000c3")
	coachCues := []struct {
		id   uuid.UUID
		text string
	}{
		{uuid.MustParse("a1f0c3d2-0000-4000-8000-0000000000c1"), "Tuck, then thrust"},
		{uuid.MustParse("a1f0c3d2-0000-4000-8000-0000000000c2"), "Drive through heels"},
		{uuid.MustParse("a1f0c3d2-0000-4000-8000-0000000000c4"), "Ribs down"},
	}
	var sets, ended, reps, cues, events [][]any
	today := now.Truncate(24 * time.Hour)
	for ai, a := range athletes {
		load := 0.0
		for d := 365; d >= 1; d-- {
			if rng.Intn(7) >= 3 { // about three training days a week
				continue
			}
			day := today.AddDate(0, 0, -d)
			age := 365 - d
			variation, side := "barbell-hip-thrust", ""
			switch {
			case age < 30+ai%10:
				variation, load = "bodyweight-hip-thrust", 0
			case age < 90+ai%20:
				if variation = "dumbbell-hip-thrust"; load == 0 || load > 24 {
					load = 10
				}
			case ai%5 == 0 && age > 300:
				variation, load = "single-leg-hip-thrust", 0
			default:
				if load < 40 {
					load = 40
				}
			}
			n := 3 + rng.Intn(2)
			for si := 0; si < n; si++ {
				id := uuid.New()
				start := day.Add(time.Duration(17*60+ai*3+si*4) * time.Minute)
				if variation == "single-leg-hip-thrust" {
					side = []string{"left", "right"}[si%2]
				}
				var sidePtr *string
				if side != "" {
					s := side
					sidePtr = &s
				}
				held := 0
				at := start.Add(time.Second)
				nextSeq := int64(1)
				for r := 1; r <= 12; r++ {
					conc, hold, ecc := 500+rng.Intn(300), 0, 700+rng.Intn(300)
					met := rng.Intn(10) < 8
					if met {
						hold, held = 1000+rng.Intn(500), held+1
					} else {
						hold = 200 + rng.Intn(600)
					}
					reps = append(reps, []any{id, int32(r), int32(conc), int32(hold), int32(ecc), met})
					at = at.Add(time.Duration(conc+hold+ecc+500) * time.Millisecond)
					nextSeq += 5
					if !met { // the timer's fix, pushed at down
						cues = append(cues, []any{id, nextSeq, a, at, pauseCue, "Pause and squeeze", "mistake", noPause, int32(r + 1), r < 12, false})
						nextSeq++
					}
					if r == 6 && rng.Intn(10) < 7 { // a coach cue mid-set
						c := coachCues[rng.Intn(len(coachCues))]
						acked := rng.Intn(2) == 0
						cues = append(cues, []any{id, nextSeq, a, at, c.id, c.text, "coach", nil, int32(r + 1), true, acked})
						if acked {
							events = append(events, []any{id, uuid.New(), int32(len(events)%1000000 + 1), "cue.ack", nextSeq, a, at.Add(300 * time.Millisecond), "live"})
						}
						nextSeq++
					}
				}
				endedAt := at.Add(2 * time.Second)
				sets = append(sets, []any{id, a, vars[variation], load, int32(12), int32(1000), "ended", start, endedAt, "{}", sidePtr})
				ended = append(ended, []any{id, a, exID, vars[variation], day, start, endedAt, load, sidePtr, int32(12), int32(held)})
			}
			if variation == "dumbbell-hip-thrust" && rng.Intn(3) == 0 && load < 24 {
				load += 2
			} else if variation == "barbell-hip-thrust" && rng.Intn(2) == 0 {
				load += 2.5
				if rng.Intn(12) == 0 {
					load = float64(int(load*0.9/2.5)) * 2.5
				}
			}
		}
	}
	copyRows := func(table string, cols []string, rows [][]any) {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows)); err != nil {
			t.Fatalf("copy %s: %v", table, err)
		}
	}
	copyRows("sets", []string{"id", "athlete_id", "variation_id", "load_kg", "target_reps", "pause_hold_ms", "status", "started_at", "ended_at", "summary", "side"}, sets)
	copyRows("ended_sets", []string{"set_id", "athlete_id", "exercise_id", "variation_id", "day", "started_at", "ended_at", "load_kg", "side", "reps", "holds_met"}, ended)
	copyRows("ended_set_reps", []string{"set_id", "n", "concentric_ms", "hold_ms", "eccentric_ms", "hold_met"}, reps)
	copyRows("ended_set_cues", []string{"set_id", "seq", "athlete_id", "at", "cue_id", "text", "source", "mistake_id", "next_rep", "next_rep_hold_met", "acknowledged"}, cues)
	copyRows("set_events", []string{"set_id", "event_id", "n", "type", "cue_seq", "actor_id", "at", "source"}, events)
	return map[string]int{"sets": len(sets), "reps": len(reps), "cues": len(cues), "cue_acks": len(events)}
}
