package progress

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
)

func f(v float64) *float64 { return &v }

var (
	bodyweight = Rung{Slug: "bw", Name: "Bodyweight", Position: 1, Sets: 3, Reps: 20}
	dumbbell   = Rung{Slug: "db", Name: "Dumbbell", Position: 2, Sets: 3, Reps: 12, MinLoadKG: f(20), LoadStepKG: f(2)}
	barbell    = Rung{Slug: "bb", Name: "Barbell", Position: 3, Sets: 5, Reps: 5, LoadStepKG: f(2.5)}
	singleLeg  = Rung{Slug: "sl", Name: "Single-leg", Position: 4, Sets: 3, Reps: 10, PerSide: true}
	banded     = Rung{Slug: "band", Name: "Banded", Position: 5, Sets: 4, Reps: 8, LoadStepKG: f(2.5)}
	ladder     = []Rung{barbell, bodyweight, singleLeg, banded, dumbbell} // any order
)

func date(s string) domain.Date {
	d, err := domain.ParseDate("d", s)
	if err != nil {
		panic(err)
	}
	return d
}

// sets builds n sets of a rung on a day at a load with holds met each.
type spec struct {
	rung  Rung
	day   string
	n     int
	load  float64
	holds int
	side  string
}

func build(specs ...spec) []Set {
	var out []Set
	for i, s := range specs {
		for j := 0; j < s.n; j++ {
			d := date(s.day)
			out = append(out, Set{
				ID: uuid.New(), Variation: s.rung.Slug, Day: d, LoadKG: s.load, HoldsMet: s.holds, Side: s.side,
				EndedAt: d.Time().Add(time.Duration(i*100+j) * time.Minute),
			})
		}
	}
	return out
}

func TestReady(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		sets    []Set
		current string
		ready   bool
		next    string
		nEvid   int
	}{
		{"never trained: lowest rung, not ready", nil, "bw", false, "db", 0},
		{"3×20 held: ready", build(spec{bodyweight, "2026-11-20", 3, 0, 20, ""}), "bw", true, "db", 3},
		{"one set short of holds", build(spec{bodyweight, "2026-11-20", 2, 0, 20, ""}, spec{bodyweight, "2026-11-20", 1, 0, 19, ""}), "bw", false, "db", 2},
		{"qualifying sets spread over two days do not add up",
			build(spec{bodyweight, "2026-11-19", 2, 0, 20, ""}, spec{bodyweight, "2026-11-20", 1, 0, 20, ""}), "bw", false, "db", 1},
		{"only the latest day counts",
			build(spec{bodyweight, "2026-11-19", 3, 0, 20, ""}, spec{bodyweight, "2026-11-20", 1, 0, 5, ""}), "bw", false, "db", 0},
		{"dumbbell complete at 20 kg (min_load_kg): ready",
			build(spec{dumbbell, "2026-11-20", 3, 20, 12, ""}), "db", true, "bb", 3},
		{"dumbbell complete at 18 kg: below min_load_kg",
			build(spec{dumbbell, "2026-11-20", 3, 18, 12, ""}), "db", false, "bb", 3},
		{"dumbbell: three sets held but not all at the day's top load",
			build(spec{dumbbell, "2026-11-20", 2, 20, 12, ""}, spec{dumbbell, "2026-11-20", 1, 22, 12, ""}), "db", false, "bb", 3},
		{"barbell 5×5 complete at 150 kg: never left by this rule",
			build(spec{barbell, "2026-11-20", 5, 150, 5, ""}), "bb", false, "sl", 5},
		{"single-leg 3×10 on each side: ready",
			build(spec{singleLeg, "2026-11-20", 3, 0, 10, "left"}, spec{singleLeg, "2026-11-20", 3, 0, 10, "right"}), "sl", true, "band", 6},
		{"single-leg 3 left, 2 right: not ready",
			build(spec{singleLeg, "2026-11-20", 3, 0, 10, "left"}, spec{singleLeg, "2026-11-20", 2, 0, 10, "right"}), "sl", false, "band", 5},
		{"single-leg six sets on one side: not ready",
			build(spec{singleLeg, "2026-11-20", 6, 0, 10, "left"}), "sl", false, "band", 6},
		{"top rung (loaded, no min_load_kg): not ready, no next", build(spec{banded, "2026-11-20", 4, 0, 8, ""}), "band", false, "", 4},
		{"current rung is that of the latest ended set",
			build(spec{bodyweight, "2026-11-20", 3, 0, 20, ""}, spec{dumbbell, "2026-11-21", 1, 10, 12, ""}), "db", false, "bb", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := Progress(ladder, c.sets, UnitsKG)
			next := ""
			if res.Next != nil {
				next = res.Next.Slug
			}
			if res.Current.Slug != c.current || res.Ready != c.ready || next != c.next || len(res.EvidenceIDs) != c.nEvid {
				t.Errorf("got current %s ready %v next %q evidence %d; want %s %v %q %d (%s)",
					res.Current.Slug, res.Ready, next, len(res.EvidenceIDs), c.current, c.ready, c.next, c.nEvid, res.Reason)
			}
			if res.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestNextLoad(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		sets   []Set
		action string // "" for null
		load   float64
	}{
		{"bodyweight rung: null", build(spec{bodyweight, "2026-11-20", 3, 0, 20, ""}), "", 0},
		{"no loaded set yet: null", build(spec{dumbbell, "2026-11-20", 3, 0, 12, ""}), "", 0},
		{"latest day complete: increase by the step", build(spec{barbell, "2026-11-20", 5, 80, 5, ""}), ActionIncrease, 82.5},
		{"one incomplete day: hold", build(spec{barbell, "2026-11-19", 5, 80, 5, ""}, spec{barbell, "2026-11-20", 5, 82.5, 4, ""}), ActionHold, 82.5},
		{"two incomplete days at L: hold",
			build(spec{barbell, "2026-11-18", 5, 82.5, 3, ""}, spec{barbell, "2026-11-20", 5, 82.5, 4, ""}), ActionHold, 82.5},
		{"three incomplete days at L: deload floor(0.9·L/step)·step",
			build(spec{barbell, "2026-11-16", 5, 82.5, 3, ""}, spec{barbell, "2026-11-18", 5, 82.5, 3, ""}, spec{barbell, "2026-11-20", 5, 82.5, 4, ""}),
			ActionDeload, 72.5},
		{"the run stops at a day of another load",
			build(spec{barbell, "2026-11-16", 5, 82.5, 3, ""}, spec{barbell, "2026-11-17", 5, 85, 3, ""}, spec{barbell, "2026-11-18", 5, 82.5, 3, ""}, spec{barbell, "2026-11-20", 5, 82.5, 4, ""}),
			ActionHold, 82.5},
		{"the run stops at a complete day",
			build(spec{barbell, "2026-11-16", 5, 82.5, 3, ""}, spec{barbell, "2026-11-17", 5, 82.5, 5, ""}, spec{barbell, "2026-11-18", 5, 82.5, 3, ""}, spec{barbell, "2026-11-20", 5, 82.5, 4, ""}),
			ActionHold, 82.5},
		{"days of another variation do not count",
			build(spec{barbell, "2026-11-16", 5, 82.5, 3, ""}, spec{bodyweight, "2026-11-17", 3, 0, 20, ""}, spec{barbell, "2026-11-18", 5, 82.5, 3, ""}, spec{barbell, "2026-11-20", 5, 82.5, 4, ""}),
			ActionDeload, 72.5},
		{"deload on the dumbbell's 2 kg step", build(spec{dumbbell, "2026-11-10", 3, 21, 5, ""}, spec{dumbbell, "2026-11-12", 3, 21, 5, ""}, spec{dumbbell, "2026-11-14", 3, 21, 5, ""}), ActionDeload, 18},
		{"deload of 100 kg is exactly 90", build(spec{barbell, "2026-11-10", 5, 100, 1, ""}, spec{barbell, "2026-11-12", 5, 100, 1, ""}, spec{barbell, "2026-11-14", 5, 100, 1, ""}), ActionDeload, 90},
		{"lighter warm-up sets do not make the day incomplete",
			build(spec{barbell, "2026-11-20", 2, 40, 0, ""}, spec{barbell, "2026-11-20", 5, 80, 5, ""}), ActionIncrease, 82.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := Progress(ladder, c.sets, UnitsKG)
			if c.action == "" {
				if res.NextLoad != nil {
					t.Fatalf("next_load %+v, want null", res.NextLoad)
				}
				return
			}
			nl := res.NextLoad
			if nl == nil || nl.Action != c.action || nl.LoadKG != c.load || nl.Reason == "" || nl.Variation != res.Current.Slug {
				t.Fatalf("next_load %+v, want %s %v", nl, c.action, c.load)
			}
		})
	}
}

func TestImbalance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		left, right SideFigures
		weaker      string // "" for none
	}{
		{SideFigures{10, 10}, SideFigures{10, 8}, "right"}, // 1.0 vs 0.8
		{SideFigures{20, 12}, SideFigures{20, 9}, "right"}, // 0.60 vs 0.45: exactly 0.15
		{SideFigures{20, 9}, SideFigures{20, 12}, "left"},  // the other way round
		{SideFigures{100, 60}, SideFigures{100, 46}, ""},   // 0.14
		{SideFigures{10, 10}, SideFigures{0, 0}, ""},       // no reps on one side
		{SideFigures{30, 30}, SideFigures{30, 30}, ""},     // even
		{SideFigures{3, 1}, SideFigures{30, 15}, "left"},   // 0.333 vs 0.5
	}
	for _, c := range cases {
		got := FindImbalance(c.left, c.right)
		switch {
		case c.weaker == "" && got != nil:
			t.Errorf("%v / %v: imbalance %+v, want none", c.left, c.right, got)
		case c.weaker != "" && (got == nil || got.WeakerSide != c.weaker):
			t.Errorf("%v / %v: imbalance %+v, want weaker %s", c.left, c.right, got, c.weaker)
		}
	}
	if !Slipping(SideFigures{20, 12}, SideFigures{20, 9}) || Slipping(SideFigures{100, 60}, SideFigures{100, 46}) || Slipping(SideFigures{0, 0}, SideFigures{10, 0}) {
		t.Error("slipping uses the same exact 0.15 rule")
	}
}

func TestDisplay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kg    float64
		step  *float64
		units string
		want  string
	}{
		{82.5, f(2.5), UnitsKG, "82.5 kg"},
		{80, f(2.5), UnitsKG, "80 kg"},
		{81, f(2.5), UnitsKG, "80 kg"},
		{81.25, f(2.5), UnitsKG, "82.5 kg"}, // halves up
		{21, f(2), UnitsKG, "22 kg"},
		{20.99, nil, UnitsKG, "20.99 kg"},
		{82.5, f(2.5), UnitsLB, "180 lb"}, // 181.88 lb
		{100, f(2.5), UnitsLB, "220 lb"},  // 220.46 lb
		{20, f(2), UnitsLB, "45 lb"},      // 44.09 lb
		{1.134, nil, UnitsLB, "5 lb"},     // 2.5 lb: halves up
		{0, nil, UnitsLB, "0 lb"},
	}
	for _, c := range cases {
		if got := Display(c.kg, c.step, c.units); got != c.want {
			t.Errorf("Display(%v, %v, %s) = %q, want %q", c.kg, c.step, c.units, got, c.want)
		}
	}
	res := Progress(ladder, build(spec{barbell, "2026-11-20", 5, 80, 5, ""}), UnitsLB)
	if res.NextLoad.Display != "180 lb" || res.NextLoad.LoadKG != 82.5 {
		t.Errorf("next_load in lb: %+v", res.NextLoad)
	}
}

func TestWeeks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from, to string
		want     []string
	}{
		// 2026-12-28 is a Monday; 2027-01-03 the Sunday of the same ISO week (2026-W53).
		{"2026-12-31", "2027-01-03", []string{"2026-12-28"}},
		{"2026-12-27", "2027-01-04", []string{"2026-12-21", "2026-12-28", "2027-01-04"}},
		// 2024-12-30 (Monday) starts ISO week 2025-W01.
		{"2025-01-01", "2025-01-12", []string{"2024-12-30", "2025-01-06"}},
		{"2026-11-30", "2026-11-30", []string{"2026-11-30"}},
		{"2026-11-29", "2026-11-30", []string{"2026-11-23", "2026-11-30"}},
	}
	for _, c := range cases {
		got := Weeks(date(c.from), date(c.to))
		if fmt.Sprint(got) != fmt.Sprint(dates(c.want)) {
			t.Errorf("Weeks(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func dates(ss []string) []domain.Date {
	var out []domain.Date
	for _, s := range ss {
		out = append(out, date(s))
	}
	return out
}

func TestDay(t *testing.T) {
	t.Parallel()
	parse := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return v
	}
	cases := []struct {
		firstRep, started, want string
	}{
		{"2026-11-24T23:30:00-05:00", "2026-11-24T23:00:00-05:00", "2026-11-25"}, // late evening in New York is the next UTC day
		{"2026-11-25T00:30:00+09:00", "2026-11-25T00:10:00+09:00", "2026-11-24"}, // early morning in Tokyo is the previous UTC day
		{"2026-11-24T23:59:59.999Z", "2026-11-24T23:50:00Z", "2026-11-24"},
		{"2026-11-25T00:00:00Z", "2026-11-24T23:58:00Z", "2026-11-25"}, // the first rep decides, not the start
		{"", "2026-11-24T22:00:00-03:00", "2026-11-25"},                // no rep: started_at, in UTC
		{"2026-12-31T23:59:00-01:00", "2026-12-31T23:00:00Z", "2027-01-01"},
	}
	for _, c := range cases {
		var first *time.Time
		if c.firstRep != "" {
			v := parse(c.firstRep)
			first = &v
		}
		if got := Day(first, parse(c.started)).String(); got != c.want {
			t.Errorf("Day(%s, %s) = %s, want %s", c.firstRep, c.started, got, c.want)
		}
		// The same instants in another zone give the same day.
		if first != nil {
			inZone := first.In(time.FixedZone("x", 13*3600))
			if got := Day(&inZone, parse(c.started)).String(); got != c.want {
				t.Errorf("Day in +13:00 = %s, want %s", got, c.want)
			}
		}
	}
}

func TestE1RMAndDeload(t *testing.T) {
	t.Parallel()
	if got := E1RM(100, 5); got != 116.67 {
		t.Errorf("E1RM(100, 5) = %v", got)
	}
	cases := []struct{ l, step, want float64 }{{82.5, 2.5, 72.5}, {100, 2.5, 90}, {21, 2, 18}, {2.5, 2.5, 0}, {50, 2, 44}}
	for _, c := range cases {
		if got := Deload(c.l, c.step); got != c.want {
			t.Errorf("Deload(%v, %v) = %v, want %v", c.l, c.step, got, c.want)
		}
	}
}

// An older loaded day among the sets never changes the answer for the latest
// days; it only tells that the rung has had a loaded set (ProgressSets adds it).
func TestOlderLoadedDay(t *testing.T) {
	t.Parallel()
	recent := build(spec{dumbbell, "2026-11-18", 3, 0, 5, ""}, spec{dumbbell, "2026-11-19", 3, 0, 5, ""}, spec{dumbbell, "2026-11-20", 3, 0, 5, ""})
	if res := Progress(ladder, recent, UnitsKG); res.NextLoad != nil {
		t.Fatalf("no loaded set yet: %+v", res.NextLoad)
	}
	with := append(build(spec{dumbbell, "2026-11-01", 3, 12, 12, ""}), recent...)
	res := Progress(ladder, with, UnitsKG)
	if res.NextLoad == nil || res.NextLoad.Action != ActionDeload || res.NextLoad.LoadKG != 0 {
		t.Fatalf("three incomplete days at 0 kg after a loaded day: %+v", res.NextLoad)
	}
}
