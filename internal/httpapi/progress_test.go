package httpapi_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/live"
)

// loggedSet is a set logged offline: started at `at`, one rep every few
// seconds, each held heldMS[i] at the top.
type loggedSet struct {
	variation string
	load      float64
	side      string
	at        time.Time
	pause     int
	heldMS    []int
}

func held(n, ms int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = ms
	}
	return out
}

// logSet creates the set with a past started_at, uploads its rep events and
// ends it, as a phone that was offline does. It returns the set's id.
func logSet(t *testing.T, h *harness, token string, s loggedSet) string {
	t.Helper()
	body := map[string]any{"variation": s.variation, "load_kg": s.load, "target_reps": len(s.heldMS),
		"pause_hold_ms": s.pause, "started_at": s.at.Format(time.RFC3339Nano)}
	if s.side != "" {
		body["side"] = s.side
	}
	r := h.post("/v1/sets", token, body)
	expect(t, r, 201)
	id := r.json(t)["id"].(string)
	var events []map[string]any
	at := s.at.Add(time.Second)
	add := func(phase string, d time.Duration) {
		at = at.Add(d)
		events = append(events, map[string]any{"event_id": uuid.NewString(), "type": "rep.phase", "phase": phase, "at": at.Format(time.RFC3339Nano)})
	}
	for _, ms := range s.heldMS {
		add("up", 500*time.Millisecond)
		add("top", 600*time.Millisecond)
		add("down", time.Duration(ms)*time.Millisecond)
		add("bottom", 800*time.Millisecond)
	}
	r = h.post("/v1/sets/"+id+"/events", token, map[string]any{"events": events})
	expect(t, r, 200)
	if got := r.json(t)["accepted"]; got != float64(len(events)) {
		t.Fatalf("accepted %v of %d: %s", got, len(events), r.Body)
	}
	expect(t, h.post("/v1/sets/"+id+"/end", token, nil), 200)
	return id
}

type progressionBody struct {
	Exercise         string   `json:"exercise"`
	CurrentVariation string   `json:"current_variation"`
	ReadyToAdvance   bool     `json:"ready_to_advance"`
	NextVariation    *string  `json:"next_variation"`
	EvidenceSetIDs   []string `json:"evidence_set_ids"`
	Reason           string   `json:"reason"`
	NextLoad         *struct {
		Action    string  `json:"action"`
		LoadKG    float64 `json:"load_kg"`
		Variation string  `json:"variation"`
		Reason    string  `json:"reason"`
		Display   string  `json:"display"`
	} `json:"next_load"`
	Imbalance *struct {
		Left   float64 `json:"left_hold_compliance"`
		Right  float64 `json:"right_hold_compliance"`
		Weaker string  `json:"weaker_side"`
	} `json:"imbalance"`
}

func progression(t *testing.T, h *harness, token, athleteID string) progressionBody {
	t.Helper()
	r := h.get("/v1/athletes/"+athleteID+"/progression?exercise=hip-thrust", token)
	expect(t, r, 200)
	var p progressionBody
	r.decode(t, &p)
	return p
}

// A coach's whole path over four days of barbell work logged offline:
// increase, hold, hold, deload; prescribe; insights; cue effectiveness; the
// overview; the CSV.
func TestProgressBarbellWeeks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath, co := w.accounts[athlete], w.accounts[coach]
	today := h.clock.Now().UTC().Truncate(24 * time.Hour)
	day := func(back int) time.Time { return today.AddDate(0, 0, -back).Add(9 * time.Hour) }

	// Never trained: the lowest rung, not ready, no load.
	p := progression(t, h, co.Access, ath.ID)
	if p.CurrentVariation != "bodyweight-hip-thrust" || p.ReadyToAdvance || p.NextVariation == nil ||
		*p.NextVariation != "dumbbell-hip-thrust" || p.NextLoad != nil || len(p.EvidenceSetIDs) != 0 {
		t.Fatalf("untrained: %+v", p)
	}

	// Day −4: 5×5 at 80 kg, every pause held.
	var firstDay []string
	for i := 0; i < 5; i++ {
		firstDay = append(firstDay, logSet(t, h, ath.Access, loggedSet{variation: "barbell-hip-thrust", load: 80,
			at: day(4).Add(time.Duration(i) * 5 * time.Minute), pause: 1000, heldMS: held(5, 1200)}))
	}
	p = progression(t, h, co.Access, ath.ID)
	if p.CurrentVariation != "barbell-hip-thrust" || p.ReadyToAdvance || *p.NextVariation != "single-leg-hip-thrust" ||
		len(p.EvidenceSetIDs) != 5 || p.NextLoad == nil || p.NextLoad.Action != "increase" || p.NextLoad.LoadKG != 82.5 ||
		p.NextLoad.Display != "82.5 kg" || p.NextLoad.Variation != "barbell-hip-thrust" || p.Imbalance != nil {
		t.Fatalf("after a complete day: %+v %+v", p, p.NextLoad)
	}

	// The athlete reads pounds; the coach still reads kilograms.
	r := h.do(request{Method: "PATCH", Path: "/v1/me", Token: ath.Access, Body: map[string]any{"units": "lb"}})
	expect(t, r, 200)
	if r.json(t)["units"] != "lb" || h.get("/v1/me", ath.Access).json(t)["units"] != "lb" {
		t.Fatalf("units: %s", r.Body)
	}
	if p := progression(t, h, ath.Access, ath.ID); p.NextLoad.Display != "180 lb" || p.NextLoad.LoadKG != 82.5 {
		t.Fatalf("in pounds: %+v", p.NextLoad)
	}
	if p := progression(t, h, co.Access, ath.ID); p.NextLoad.Display != "82.5 kg" {
		t.Fatalf("the coach's units: %+v", p.NextLoad)
	}

	// Prescribe the increase for three weeks.
	r = h.post("/v1/athletes/"+ath.ID+"/progression/prescribe", co.Access, map[string]any{
		"scheduled_on": today.Format(time.DateOnly), "repeat_weeks": 3})
	expect(t, r, 201)
	var presc struct {
		Items []struct {
			Variation   string  `json:"variation"`
			Sets        int     `json:"sets"`
			Reps        int     `json:"reps"`
			LoadKG      float64 `json:"load_kg"`
			PauseHoldMS int     `json:"pause_hold_ms"`
			ScheduledOn string  `json:"scheduled_on"`
		} `json:"items"`
	}
	r.decode(t, &presc)
	if len(presc.Items) != 3 {
		t.Fatalf("prescriptions: %s", r.Body)
	}
	for i, it := range presc.Items {
		if it.Variation != "barbell-hip-thrust" || it.Sets != 5 || it.Reps != 5 || it.LoadKG != 82.5 || it.PauseHoldMS != 1000 ||
			it.ScheduledOn != today.AddDate(0, 0, 7*i).Format(time.DateOnly) {
			t.Fatalf("prescription %d: %+v", i, it)
		}
	}
	expect(t, h.post("/v1/athletes/"+ath.ID+"/progression/prescribe", co.Access, map[string]any{
		"scheduled_on": today.AddDate(0, 0, -1).Format(time.DateOnly)}), 400, "invalid", "scheduled_on")
	expect(t, h.post("/v1/athletes/"+ath.ID+"/progression/prescribe", co.Access, map[string]any{
		"scheduled_on": today.Format(time.DateOnly), "repeat_weeks": 13}), 400, "invalid", "repeat_weeks")
	expect(t, h.post("/v1/athletes/"+ath.ID+"/progression/prescribe", co.Access, map[string]any{
		"exercise": "no-such-exercise", "scheduled_on": today.Format(time.DateOnly)}), 404, "not_found")

	// Days −3, −2 and −1 at 82.5 kg: reps 2 and 4 of every set miss the pause.
	// hold, hold, then deload to floor(0.9 × 82.5 / 2.5) × 2.5 = 72.5.
	misses := []int{1200, 300, 1200, 300, 1200}
	for _, step := range []struct {
		back   int
		action string
		load   float64
	}{{3, "hold", 82.5}, {2, "hold", 82.5}, {1, "deload", 72.5}} {
		for i := 0; i < 5; i++ {
			logSet(t, h, ath.Access, loggedSet{variation: "barbell-hip-thrust", load: 82.5,
				at: day(step.back).Add(time.Duration(i) * 5 * time.Minute), pause: 1000, heldMS: misses})
		}
		p = progression(t, h, co.Access, ath.ID)
		if p.NextLoad == nil || p.NextLoad.Action != step.action || p.NextLoad.LoadKG != step.load || p.NextLoad.Reason == "" {
			t.Fatalf("day −%d: %+v", step.back, p.NextLoad)
		}
		if len(p.EvidenceSetIDs) != 0 || p.ReadyToAdvance {
			t.Fatalf("day −%d: evidence %v", step.back, p.EvidenceSetIDs)
		}
	}

	// Insights: totals over the weeks, every week present.
	r = h.get("/v1/athletes/"+ath.ID+"/insights?exercise=hip-thrust", ath.Access)
	expect(t, r, 200)
	var ins struct {
		Weeks []struct {
			WeekStart      string   `json:"week_start"`
			Sets           int      `json:"sets"`
			Reps           int      `json:"reps"`
			HoldsMet       int      `json:"holds_met"`
			HoldCompliance *float64 `json:"hold_compliance"`
			VolumeKG       float64  `json:"volume_kg"`
			AvgConcentric  *int     `json:"avg_concentric_ms"`
			AvgEccentric   *int     `json:"avg_eccentric_ms"`
			BestE1RM       *float64 `json:"best_e1rm_kg"`
			Mistakes       []struct {
				Name  string `json:"name"`
				Count int    `json:"count"`
			} `json:"mistakes"`
		} `json:"weeks"`
	}
	r.decode(t, &ins)
	if len(ins.Weeks) != 12 {
		t.Fatalf("%d weeks, want 12", len(ins.Weeks))
	}
	var sets, holds, mistakes int
	var volume, best float64
	for i, wk := range ins.Weeks {
		if d, _ := time.Parse(time.DateOnly, wk.WeekStart); d.Weekday() != time.Monday || i > 0 && wk.WeekStart <= ins.Weeks[i-1].WeekStart {
			t.Fatalf("week_start %s", wk.WeekStart)
		}
		sets += wk.Sets
		holds += wk.HoldsMet
		volume += wk.VolumeKG
		if wk.Sets == 0 {
			if wk.HoldCompliance != nil || wk.AvgConcentric != nil || wk.BestE1RM != nil || len(wk.Mistakes) != 0 {
				t.Fatalf("an empty week is not empty: %+v", wk)
			}
			continue
		}
		if *wk.AvgConcentric != 600 || *wk.AvgEccentric != 800 {
			t.Fatalf("tempo %v %v", *wk.AvgConcentric, *wk.AvgEccentric)
		}
		best = math.Max(best, *wk.BestE1RM)
		for _, m := range wk.Mistakes {
			if m.Name != "No pause at top" {
				t.Fatalf("mistake %+v", m)
			}
			mistakes += m.Count
		}
	}
	if sets != 20 || holds != 25+15*3 || volume != 80*25+82.5*75 || best != 96.25 || mistakes != 30 {
		t.Fatalf("insights totals: sets %d holds %d volume %v e1rm %v mistakes %d", sets, holds, volume, best, mistakes)
	}

	// Cue effectiveness: the timer's fix after reps 2 and 4 was followed by a held rep every time.
	r = h.get("/v1/coach/cue-effectiveness", co.Access)
	expect(t, r, 200)
	var ce struct {
		Baseline *float64 `json:"baseline_hold_met_rate"`
		Items    []struct {
			CueID  *string  `json:"cue_id"`
			Text   string   `json:"text"`
			Source string   `json:"source"`
			Sent   int      `json:"sent"`
			Acked  int      `json:"acknowledged"`
			Rate   *float64 `json:"next_rep_hold_met_rate"`
		} `json:"items"`
	}
	r.decode(t, &ce)
	if ce.Baseline == nil || *ce.Baseline != 0.7 || len(ce.Items) != 1 {
		t.Fatalf("cue effectiveness: %s", r.Body)
	}
	if it := ce.Items[0]; it.Text != "Pause and squeeze" || it.Source != "mistake" || it.Sent != 30 || it.Acked != 0 ||
		it.Rate == nil || *it.Rate != 1 || it.CueID == nil {
		t.Fatalf("cue effectiveness item: %+v", it)
	}
	r = h.get("/v1/coach/cue-effectiveness?athlete_id="+ath.ID+"&from="+today.AddDate(0, 0, -2).Format(time.DateOnly), co.Access)
	expect(t, r, 200)
	r.decode(t, &ce)
	if len(ce.Items) != 1 || ce.Items[0].Sent != 20 || *ce.Baseline != 0.6 {
		t.Fatalf("two days of one athlete: %s", r.Body)
	}
	expect(t, h.get("/v1/coach/cue-effectiveness?athlete_id="+w.accounts[otherAthlete].ID, co.Access), 404, "not_found")
	r = h.get("/v1/coach/cue-effectiveness", w.accounts[otherCoach].Access)
	expect(t, r, 200)
	r.decode(t, &ce)
	if len(ce.Items) != 0 || ce.Baseline != nil {
		t.Fatalf("another coach sees cues: %s", r.Body)
	}

	// The overview: the deload needs attention.
	r = h.get("/v1/coach/overview", co.Access)
	expect(t, r, 200)
	var ov struct {
		Items []struct {
			AthleteID  string   `json:"athlete_id"`
			LastSetOn  *string  `json:"last_set_on"`
			Sets7      int      `json:"sets_last_7d"`
			Compliance *float64 `json:"hold_compliance_last_7d"`
			Ready      bool     `json:"ready_to_advance"`
			Attention  []string `json:"attention"`
		} `json:"items"`
	}
	r.decode(t, &ov)
	if len(ov.Items) != 1 || ov.Items[0].AthleteID != ath.ID || ov.Items[0].Sets7 != 20 || *ov.Items[0].Compliance != 0.7 ||
		*ov.Items[0].LastSetOn != today.AddDate(0, 0, -1).Format(time.DateOnly) || strings.Join(ov.Items[0].Attention, ",") != "deload_suggested" {
		t.Fatalf("overview: %s", r.Body)
	}

	// The CSV: a header and one row per rep, the first set first.
	r = h.get("/v1/athletes/"+ath.ID+"/sets.csv", co.Access)
	expect(t, r, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+100 || strings.Join(rows[0], ",") != "set_id,day,variation,side,load_kg,rep,concentric_ms,hold_ms,eccentric_ms,hold_met" {
		t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
	}
	want := firstDay[0] + "," + day(4).Format(time.DateOnly) + ",barbell-hip-thrust,,80,1,600,1200,800,true"
	if got := strings.Join(rows[1], ","); got != want {
		t.Fatalf("first row %s, want %s", got, want)
	}
	if got := strings.Join(rows[100], ","); !strings.HasSuffix(got, ",82.5,5,600,1200,800,true") {
		t.Fatalf("last row %s", got)
	}

	// The figures stored at the end agree with the set as GET /v1/sets/{id} rebuilds it.
	r = h.get("/v1/sets/"+firstDay[2], ath.Access)
	expect(t, r, 200)
	var detail struct {
		Reps []struct {
			N       int  `json:"n"`
			HoldMS  *int `json:"hold_ms"`
			HoldMet bool `json:"hold_met"`
		} `json:"reps"`
	}
	r.decode(t, &detail)
	if len(detail.Reps) != 5 || *detail.Reps[4].HoldMS != 1200 || !detail.Reps[4].HoldMet {
		t.Fatalf("set detail: %s", r.Body)
	}

	// Figures lost (or never written: sets ended before this feature) are
	// rebuilt from the events by the backfill, identically.
	ctx := context.Background()
	before := string(h.get("/v1/athletes/"+ath.ID+"/sets.csv", co.Access).Body)
	for _, q := range []string{`DELETE FROM ended_set_reps`, `DELETE FROM ended_set_cues`, `DELETE FROM ended_sets`} {
		if _, err := h.store.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	n, err := live.BackfillRollups(ctx, h.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || n != 20 {
		t.Fatalf("backfill: %d, %v", n, err)
	}
	if after := string(h.get("/v1/athletes/"+ath.ID+"/sets.csv", co.Access).Body); after != before {
		t.Fatalf("backfilled CSV differs:\n%s\n---\n%s", before, after)
	}
	r = h.get("/v1/coach/cue-effectiveness", co.Access)
	r.decode(t, &ce)
	if len(ce.Items) != 1 || ce.Items[0].Sent != 30 || *ce.Items[0].Rate != 1 {
		t.Fatalf("cue effectiveness after the backfill: %s", r.Body)
	}
}

// The single-leg rung: side required (also from a prescription), readiness per
// side, the imbalance at exactly 0.15, prescribing the next rung.
func TestProgressSingleLegSides(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath, co := w.accounts[athlete], w.accounts[coach]
	today := h.clock.Now().UTC().Truncate(24 * time.Hour)
	at := today.AddDate(0, 0, -1).Add(8 * time.Hour)

	expect(t, h.post("/v1/sets", ath.Access, map[string]any{"variation": "single-leg-hip-thrust", "load_kg": 0,
		"target_reps": 10, "pause_hold_ms": 1000}), 400, "invalid", "side")
	expect(t, h.post("/v1/sets", ath.Access, map[string]any{"variation": "barbell-hip-thrust", "load_kg": 60,
		"target_reps": 5, "pause_hold_ms": 1000, "side": "left"}), 400, "invalid", "side")
	expect(t, h.post("/v1/sets", ath.Access, map[string]any{"variation": "single-leg-hip-thrust", "load_kg": 0,
		"target_reps": 10, "pause_hold_ms": 1000, "side": "middle"}), 400, "invalid", "side")
	r := h.post("/v1/prescriptions", co.Access, map[string]any{"athlete_id": ath.ID, "variation": "single-leg-hip-thrust",
		"sets": 3, "reps": 10, "load_kg": 0, "pause_hold_ms": 1000, "scheduled_on": today.Format(time.DateOnly), "notes": ""})
	expect(t, r, 201)
	pid := r.json(t)["id"].(string)
	expect(t, h.post("/v1/sets", ath.Access, map[string]any{"prescription_id": pid}), 400, "invalid", "side")
	r = h.post("/v1/sets", ath.Access, map[string]any{"prescription_id": pid, "side": "right",
		"started_at": at.Add(-time.Hour).Format(time.RFC3339Nano)}) // the same day as the sets below
	expect(t, r, 201)
	if r.json(t)["side"] != "right" {
		t.Fatalf("side: %s", r.Body)
	}
	expect(t, h.post("/v1/sets/"+r.json(t)["id"].(string)+"/end", ath.Access, nil), 200) // no reps: not qualifying

	// Three clean sets on the left; on the right three where 7 of 10 held.
	seven := append(held(7, 1200), held(3, 200)...)
	for i := 0; i < 3; i++ {
		logSet(t, h, ath.Access, loggedSet{variation: "single-leg-hip-thrust", side: "left", at: at.Add(time.Duration(i) * 4 * time.Minute), pause: 1000, heldMS: held(10, 1200)})
		logSet(t, h, ath.Access, loggedSet{variation: "single-leg-hip-thrust", side: "right", at: at.Add(time.Duration(i)*4*time.Minute + 2*time.Minute), pause: 1000, heldMS: seven})
	}
	p := progression(t, h, co.Access, ath.ID)
	if p.CurrentVariation != "single-leg-hip-thrust" || p.ReadyToAdvance || len(p.EvidenceSetIDs) != 3 || p.NextLoad != nil ||
		p.Imbalance == nil || p.Imbalance.Weaker != "right" || p.Imbalance.Left != 1 || p.Imbalance.Right != 0.7 {
		t.Fatalf("left only: %+v %+v", p, p.Imbalance)
	}
	// Three clean sets on the right too: ready, and 30/30 against 51/60 is exactly 0.15 apart.
	for i := 0; i < 3; i++ {
		logSet(t, h, ath.Access, loggedSet{variation: "single-leg-hip-thrust", side: "right", at: at.Add(time.Hour + time.Duration(i)*3*time.Minute), pause: 1000, heldMS: held(10, 1200)})
	}
	p = progression(t, h, co.Access, ath.ID)
	if !p.ReadyToAdvance || *p.NextVariation != "banded-hip-thrust" || len(p.EvidenceSetIDs) != 6 || p.Imbalance == nil || p.Imbalance.Right != 0.85 {
		t.Fatalf("both sides: %+v %+v", p, p.Imbalance)
	}
	r = h.post("/v1/athletes/"+ath.ID+"/progression/prescribe", co.Access, map[string]any{"scheduled_on": today.Format(time.DateOnly)})
	expect(t, r, 201)
	items := r.json(t)["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("prescribe: %s", r.Body)
	}
	it := items[0].(map[string]any)
	if it["variation"] != "banded-hip-thrust" || it["sets"] != float64(4) || it["reps"] != float64(8) || it["load_kg"] != float64(0) {
		t.Fatalf("prescribed the next rung: %v", it)
	}
}

// Bad input on the progress endpoints: ranges, exercises, started_at, units and
// the admin's load step.
func TestProgressBadInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath, co, adm := w.accounts[athlete], w.accounts[coach], w.accounts[admin]
	now := h.clock.Now().UTC()
	base := "/v1/athletes/" + ath.ID
	for _, path := range []string{base + "/insights", base + "/sets.csv", "/v1/coach/cue-effectiveness"} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		expect(t, h.get(path+sep+"from=2026-03-02&to=2026-03-01", co.Access), 400, "invalid", "from")
		expect(t, h.get(path+sep+"from=2025-03-01&to=2026-03-01", co.Access), 400, "invalid", "to") // a year and a day
		expect(t, h.get(path+sep+"from=2025-03-02&to=2026-03-01", co.Access), 200)                  // a year
		expect(t, h.get(path+sep+"from=2026-02-30", co.Access), 400, "invalid", "from")
	}
	r := h.get(base+"/insights?from=2026-12-31&to=2027-01-11", co.Access)
	expect(t, r, 200)
	if got := fmt.Sprint(r.json(t)["weeks"].([]any)[0].(map[string]any)["week_start"]); got != "2026-12-28" || len(r.json(t)["weeks"].([]any)) != 3 {
		t.Fatalf("weeks across the new year: %s", r.Body)
	}
	expect(t, h.get(base+"/progression?exercise=no-such-exercise", co.Access), 404, "not_found")
	expect(t, h.get(base+"/progression", co.Access), 400, "invalid", "exercise")
	expect(t, h.get(base+"/insights?exercise=no-such-exercise", co.Access), 404, "not_found")

	set := func(startedAt string) response {
		return h.post("/v1/sets", ath.Access, map[string]any{"variation": "barbell-hip-thrust", "load_kg": 60,
			"target_reps": 5, "pause_hold_ms": 1000, "started_at": startedAt})
	}
	expect(t, set(now.Add(-31*24*time.Hour).Format(time.RFC3339)), 400, "invalid", "started_at")
	expect(t, set(now.Add(2*time.Minute).Format(time.RFC3339)), 400, "invalid", "started_at")
	expect(t, set("yesterday"), 400, "invalid", "started_at")
	r = set(now.Add(30 * time.Second).Format(time.RFC3339Nano)) // a phone a little ahead
	expect(t, r, 201)
	if r.json(t)["status"] != "live" {
		t.Fatalf("a back-dated set is live: %s", r.Body)
	}
	expect(t, h.post("/v1/sets/"+r.json(t)["id"].(string)+"/end", ath.Access, nil), 200)

	patch := func(token string, body any, header map[string]string) response {
		return h.do(request{Method: "PATCH", Path: "/v1/me", Token: token, Body: body, Header: header})
	}
	expect(t, patch(ath.Access, map[string]any{"units": "stone"}, nil), 400, "invalid", "units")
	expect(t, patch(ath.Access, map[string]any{}, nil), 400, "invalid")
	expect(t, patch(ath.Access, map[string]any{"units": nil}, nil), 400, "invalid", "units")
	r = patch(co.Access, map[string]any{"display_name": "Coach Kim"}, nil)
	expect(t, r, 200)
	if m := r.json(t); m["display_name"] != "Coach Kim" || m["units"] != "kg" {
		t.Fatalf("patch me: %s", r.Body)
	}

	// The admin's load step: If-Match, validation, the library shows it, audited.
	r = h.get("/v1/exercises/hip-thrust", adm.Access)
	expect(t, r, 200)
	var vid string
	for _, v := range r.json(t)["variations"].([]any) {
		v := v.(map[string]any)
		want := map[string]any{"bodyweight-hip-thrust": nil, "dumbbell-hip-thrust": 2.0, "barbell-hip-thrust": 2.5,
			"single-leg-hip-thrust": nil, "banded-hip-thrust": 2.5}[v["slug"].(string)]
		if v["load_step_kg"] != want {
			t.Fatalf("%s load_step_kg %v, want %v", v["slug"], v["load_step_kg"], want)
		}
		if v["slug"] == "dumbbell-hip-thrust" {
			vid = v["id"].(string)
			if v["advance_when"].(map[string]any)["min_load_kg"] != 20.0 {
				t.Fatalf("dumbbell advance_when: %v", v["advance_when"])
			}
		}
	}
	path := "/v1/admin/variations/" + vid
	do := func(body any, ifMatch string) response {
		hdr := map[string]string{}
		if ifMatch != "" {
			hdr["If-Match"] = ifMatch
		}
		return h.do(request{Method: "PATCH", Path: path, Token: adm.Access, Body: body, Header: hdr})
	}
	expect(t, do(map[string]any{"load_step_kg": 2.5}, ""), 428, "precondition_required")
	expect(t, do(map[string]any{"load_step_kg": 2.5}, `"7"`), 412, "precondition_failed")
	expect(t, do(map[string]any{"load_step_kg": 0}, `"1"`), 400, "invalid", "load_step_kg")
	expect(t, do(map[string]any{"load_step_kg": 1.234}, `"1"`), 400, "invalid", "load_step_kg")
	expect(t, do(map[string]any{}, `"1"`), 400, "invalid", "load_step_kg")
	r = do(map[string]any{"load_step_kg": 2.5}, `"1"`)
	expect(t, r, 200)
	if r.Header.Get("ETag") != `"2"` || r.json(t)["load_step_kg"] != 2.5 {
		t.Fatalf("patched variation: %s %v", r.Body, r.Header)
	}
	expect(t, do(map[string]any{"load_step_kg": nil}, `"1"`), 412, "precondition_failed")
	r = h.get("/v1/admin/audit?entity=variation&entity_id="+vid, adm.Access)
	expect(t, r, 200)
	items := r.json(t)["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["before"].(map[string]any)["load_step_kg"] != 2.0 ||
		items[0].(map[string]any)["after"].(map[string]any)["load_step_kg"] != 2.5 {
		t.Fatalf("audit: %s", r.Body)
	}
}

// A set's day is the UTC date of its first rep event, whatever offset the
// phone wrote its times with.
func TestProgressDayIsUTC(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath := w.accounts[athlete]
	ny := time.FixedZone("New York", -5*3600)
	// Started at 23:40 in New York two days ago, first rep at 23:40:01 there: the
	// next day in UTC (04:40Z).
	local := h.clock.Now().In(ny).AddDate(0, 0, -2)
	start := time.Date(local.Year(), local.Month(), local.Day(), 23, 40, 0, 0, ny)
	id := logSet(t, h, ath.Access, loggedSet{variation: "barbell-hip-thrust", load: 60, at: start, pause: 500, heldMS: held(2, 600)})
	r := h.get("/v1/athletes/"+ath.ID+"/sets.csv", ath.Access)
	expect(t, r, 200)
	rows, _ := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	want := start.UTC().Format(time.DateOnly)
	if want == start.Format(time.DateOnly) {
		t.Fatal("the test needs a start whose UTC date differs")
	}
	if len(rows) != 3 || rows[1][0] != id || rows[1][1] != want {
		t.Fatalf("day of the set: %v, want %s", rows, want)
	}
}

// "No loaded set yet" looks at the rung's whole history, not only at the days
// the load rule reads: three body-weight days after a loaded one still get a
// next load.
func TestProgressLoadedSetLongAgo(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := w.h
	ath, co := w.accounts[athlete], w.accounts[coach]
	today := h.clock.Now().UTC().Truncate(24 * time.Hour)
	logSet(t, h, ath.Access, loggedSet{variation: "dumbbell-hip-thrust", load: 12, at: today.AddDate(0, 0, -8).Add(9 * time.Hour), pause: 500, heldMS: held(3, 600)})
	for back := 3; back >= 1; back-- {
		logSet(t, h, ath.Access, loggedSet{variation: "dumbbell-hip-thrust", load: 0, at: today.AddDate(0, 0, -back).Add(9 * time.Hour), pause: 500, heldMS: held(3, 600)})
	}
	p := progression(t, h, co.Access, ath.ID)
	if p.CurrentVariation != "dumbbell-hip-thrust" || p.NextLoad == nil || p.NextLoad.Action != "deload" || p.NextLoad.LoadKG != 0 {
		t.Fatalf("next load after an old loaded day: %+v", p.NextLoad)
	}
}
