// Package progress holds the coaching rules of DESIGN.md §3 "Progress" as pure
// functions: when an athlete is ready for the next rung of a variation ladder,
// the next load (increase, hold or deload), a left/right imbalance, the day and
// ISO week a set belongs to, and how a load is shown in the reader's unit. It
// does no I/O and reads no clock: callers pass "today" and the facts.
package progress

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
)

// Rung is one variation of an exercise's ladder with its advance_when rules.
type Rung struct {
	ID       uuid.UUID
	Slug     string
	Name     string
	Position int
	Sets     int  // advance_when.sets
	Reps     int  // advance_when.reps
	PerSide  bool // advance_when.per_side
	// MinLoadKG is advance_when.min_load_kg; nil: the rung is never left by the
	// load rule ("keep adding weight").
	MinLoadKG *float64
	// LoadStepKG is the variation's load_step_kg; nil on rungs not judged by load.
	LoadStepKG *float64
}

// Set is what the rules need of one ended set.
type Set struct {
	ID        uuid.UUID
	Variation string // slug
	Day       domain.Date
	EndedAt   time.Time
	LoadKG    float64
	Side      string // left, right or ""
	HoldsMet  int
}

// Day is the day a set belongs to: the UTC date of its first stored rep event,
// else of started_at. Whatever offset a timestamp was written with, the day is
// read in UTC, so no time zone moves a set to another day.
func Day(firstRepAt *time.Time, startedAt time.Time) domain.Date {
	if firstRepAt != nil {
		return domain.DateOf(firstRepAt.UTC())
	}
	return domain.DateOf(startedAt.UTC())
}

// WeekStart is the Monday of d's ISO week.
func WeekStart(d domain.Date) domain.Date {
	wd := int(d.Time().Weekday()+6) % 7 // Monday 0 … Sunday 6
	return d.AddDate(0, 0, -wd)
}

// Weeks lists the Monday of every ISO week from the one holding from to the one
// holding to (to not before from).
func Weeks(from, to domain.Date) []domain.Date {
	var out []domain.Date
	for w := WeekStart(from); !w.After(to); w = w.AddDate(0, 0, 7) {
		out = append(out, w)
	}
	return out
}

// Action of a next load.
const (
	ActionIncrease = "increase"
	ActionHold     = "hold"
	ActionDeload   = "deload"
)

// DeloadAfter is the number of consecutive incomplete days at the same load
// after which the load comes down.
const DeloadAfter = 3

// NextLoad is the load suggested for the next session of a loaded rung.
type NextLoad struct {
	Action    string  `json:"action"`
	LoadKG    float64 `json:"load_kg"`
	Variation string  `json:"variation"`
	Reason    string  `json:"reason"`
	Display   string  `json:"display"`
}

// Imbalance is a left/right gap in hold compliance on a per-side rung.
type Imbalance struct {
	LeftHoldCompliance  float64 `json:"left_hold_compliance"`
	RightHoldCompliance float64 `json:"right_hold_compliance"`
	WeakerSide          string  `json:"weaker_side"`
}

// Result is the progression of one athlete on one exercise.
type Result struct {
	Current     Rung
	Next        *Rung
	Ready       bool
	EvidenceIDs []uuid.UUID
	Reason      string
	NextLoad    *NextLoad
	// LatestDay is the latest day the current rung was trained; LatestLoadKG its
	// highest load (0 when it was never trained).
	LatestDay    *domain.Date
	LatestLoadKG float64
}

// Units of a reader.
const (
	UnitsKG = "kg"
	UnitsLB = "lb"
)

// centi works in hundredths of a kilogram so that steps like 2.5 add and divide
// exactly (loads are stored with two decimals).
func centi(kg float64) int64 { return int64(math.Round(kg * 100)) }

func fromCenti(c int64) float64 { return float64(c) / 100 }

// Deload is floor(0.9·L / step)·step, computed exactly.
func Deload(loadKG, stepKG float64) float64 {
	l, s := centi(loadKG), centi(stepKG)
	if s <= 0 {
		return loadKG
	}
	return fromCenti((9 * l / (10 * s)) * s)
}

// Display is a load in the reader's unit: kilograms rounded to the rung's step
// (to 0.01 kg without one), pounds to the nearest 5 lb.
func Display(loadKG float64, stepKG *float64, units string) string {
	if units == UnitsLB {
		lb := loadKG / 0.45359237
		return strconv.FormatInt(int64(math.Floor(lb/5+0.5))*5, 10) + " lb"
	}
	c := centi(loadKG)
	if stepKG != nil && centi(*stepKG) > 0 {
		s := centi(*stepKG)
		c = (c + s/2) / s * s // nearest step, halves up
	}
	return strconv.FormatFloat(fromCenti(c), 'f', -1, 64) + " kg"
}

// day is one training day of a rung: its sets, its highest load and whether it
// was complete at that load.
type day struct {
	date     domain.Date
	sets     []Set
	top      float64
	complete bool
}

func qualifies(r Rung, s Set) bool { return s.HoldsMet >= r.Reps }

// sides are the groups a day is counted in: both sides on a per-side rung.
func sides(r Rung) []string {
	if r.PerSide {
		return []string{"left", "right"}
	}
	return []string{""}
}

// countPerSide counts the qualifying sets of a day per side, those at load
// atCenti only when atCenti ≥ 0.
func countPerSide(r Rung, sets []Set, atCenti int64) map[string]int {
	n := map[string]int{}
	for _, s := range sets {
		if !qualifies(r, s) || atCenti >= 0 && centi(s.LoadKG) != atCenti {
			continue
		}
		side := ""
		if r.PerSide {
			side = s.Side
		}
		n[side]++
	}
	return n
}

func enough(r Rung, n map[string]int) bool {
	for _, side := range sides(r) {
		if n[side] < r.Sets {
			return false
		}
	}
	return true
}

// days groups the sets of one rung by day, latest first.
func days(r Rung, sets []Set) []day {
	byDate := map[domain.Date]*day{}
	var order []*day
	for _, s := range sets {
		if s.Variation != r.Slug {
			continue
		}
		d := byDate[s.Day]
		if d == nil {
			d = &day{date: s.Day}
			byDate[s.Day] = d
			order = append(order, d)
		}
		d.sets = append(d.sets, s)
		d.top = max(d.top, s.LoadKG)
	}
	out := make([]day, 0, len(order))
	for _, d := range order {
		d.complete = enough(r, countPerSide(r, d.sets, centi(d.top)))
		out = append(out, *d)
	}
	// latest first
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].date.After(out[j-1].date); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Progress applies the rules to an exercise's ladder (any order) and the
// athlete's ended sets of that exercise. units is the reader's.
func Progress(ladder []Rung, sets []Set, units string) Result {
	if len(ladder) == 0 {
		return Result{Reason: "This exercise has no variations."}
	}
	rungs := sortedRungs(ladder)
	cur := 0
	var latest *Set
	for i := range sets {
		if latest == nil || sets[i].EndedAt.After(latest.EndedAt) ||
			sets[i].EndedAt.Equal(latest.EndedAt) && sets[i].ID.String() > latest.ID.String() {
			latest = &sets[i]
		}
	}
	if latest != nil {
		for i, r := range rungs {
			if r.Slug == latest.Variation {
				cur = i
			}
		}
	}
	res := Result{Current: rungs[cur], EvidenceIDs: []uuid.UUID{}}
	if cur+1 < len(rungs) {
		next := rungs[cur+1]
		res.Next = &next
	}
	r := res.Current
	ds := days(r, sets)
	if len(ds) == 0 {
		res.Reason = fmt.Sprintf("No ended %s sets yet: start here and own %s.", r.Name, target(r))
		return res
	}
	d := ds[0]
	res.LatestDay, res.LatestLoadKG = &d.date, d.top
	for _, s := range d.sets {
		if qualifies(r, s) {
			res.EvidenceIDs = append(res.EvidenceIDs, s.ID)
		}
	}
	loaded := r.LoadStepKG != nil && centi(*r.LoadStepKG) > 0
	switch {
	case !loaded:
		res.Ready = enough(r, countPerSide(r, d.sets, -1))
	default:
		res.Ready = d.complete && r.MinLoadKG != nil && centi(d.top) >= centi(*r.MinLoadKG)
	}
	res.Reason = readyReason(r, res, d, loaded)
	if loaded && hasLoadedSet(r, sets) {
		res.NextLoad = nextLoad(r, ds, units)
	}
	return res
}

func hasLoadedSet(r Rung, sets []Set) bool {
	for _, s := range sets {
		if s.Variation == r.Slug && s.LoadKG > 0 {
			return true
		}
	}
	return false
}

func sortedRungs(ladder []Rung) []Rung {
	out := append([]Rung(nil), ladder...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Position < out[j-1].Position; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func target(r Rung) string {
	t := fmt.Sprintf("%d×%d with every pause held", r.Sets, r.Reps)
	if r.PerSide {
		t += " on each side"
	}
	return t
}

func kg(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + " kg" }

func readyReason(r Rung, res Result, d day, loaded bool) string {
	n := len(res.EvidenceIDs)
	switch {
	case res.Ready && res.Next != nil:
		return fmt.Sprintf("On %s the athlete owned %s at %s: ready for %s.", d.date, target(r), loadOrBodyweight(d.top), res.Next.Name)
	case res.Ready:
		return fmt.Sprintf("On %s the athlete owned %s, the top of the ladder.", d.date, target(r))
	case loaded && r.MinLoadKG == nil:
		return fmt.Sprintf("%s is the rung to keep adding weight on: it is not left by the numbers.", r.Name)
	case loaded && d.complete:
		return fmt.Sprintf("On %s the athlete completed %s at %s; %s is needed before %s.", d.date, target(r), kg(d.top), kg(*r.MinLoadKG), nextName(res))
	}
	return fmt.Sprintf("On %s, %d set(s) had at least %d held reps; %s is needed before %s.", d.date, n, r.Reps, target(r), nextName(res))
}

func nextName(res Result) string {
	if res.Next == nil {
		return "moving on"
	}
	return "moving to " + res.Next.Name
}

func loadOrBodyweight(l float64) string {
	if l <= 0 {
		return "body weight"
	}
	return kg(l)
}

// nextLoad applies the load rule to a loaded rung's days, latest first.
func nextLoad(r Rung, ds []day, units string) *NextLoad {
	step := *r.LoadStepKG
	latest := ds[0]
	l := latest.top
	nl := &NextLoad{Variation: r.Slug}
	if latest.complete {
		nl.Action, nl.LoadKG = ActionIncrease, fromCenti(centi(l)+centi(step))
		nl.Reason = fmt.Sprintf("Every set of %s was held at %s on %s: add %s.", target(r), kg(l), latest.date, kg(step))
	} else {
		k := IncompleteRun(ds)
		if k < DeloadAfter {
			nl.Action, nl.LoadKG = ActionHold, l
			nl.Reason = fmt.Sprintf("%s at %s is not complete yet (%d session(s) short): stay at %s.", target(r), kg(l), k, kg(l))
		} else {
			nl.Action, nl.LoadKG = ActionDeload, Deload(l, step)
			nl.Reason = fmt.Sprintf("%d sessions in a row fell short of %s at %s: come down to %s and build back.", k, target(r), kg(l), kg(nl.LoadKG))
		}
	}
	nl.Display = Display(nl.LoadKG, r.LoadStepKG, units)
	return nl
}

// IncompleteRun is k: the training days, latest first, that were incomplete at
// the latest day's highest load; it stops at a complete day or a day whose
// highest load differs.
func IncompleteRun(ds []day) int {
	if len(ds) == 0 {
		return 0
	}
	l := centi(ds[0].top)
	k := 0
	for _, d := range ds {
		if d.complete || centi(d.top) != l {
			break
		}
		k++
	}
	return k
}

// SideFigures are the reps and holds met on one side.
type SideFigures struct{ Reps, HoldsMet int }

// MinImbalance is the compliance gap between sides that counts as an imbalance.
const MinImbalance = 0.15

// FindImbalance compares the sides' hold compliance; nil when either side has
// no reps or they differ by less than 0.15. The comparison is exact (in
// integers), so 0.60 against 0.45 is an imbalance.
func FindImbalance(left, right SideFigures) *Imbalance {
	if left.Reps == 0 || right.Reps == 0 {
		return nil
	}
	// |hl/rl − hr/rr| ≥ 15/100  ⇔  100·|hl·rr − hr·rl| ≥ 15·rl·rr
	diff := int64(left.HoldsMet)*int64(right.Reps) - int64(right.HoldsMet)*int64(left.Reps)
	if diff < 0 {
		diff = -diff
	}
	if 100*diff < 15*int64(left.Reps)*int64(right.Reps) {
		return nil
	}
	im := &Imbalance{
		LeftHoldCompliance:  Ratio(left.HoldsMet, left.Reps),
		RightHoldCompliance: Ratio(right.HoldsMet, right.Reps),
		WeakerSide:          "left",
	}
	if im.RightHoldCompliance < im.LeftHoldCompliance {
		im.WeakerSide = "right"
	}
	return im
}

// Ratio is n/d rounded to four decimals (0 when d is 0).
func Ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(d)*10000) / 10000
}

// Slipping reports whether compliance fell by 0.15 or more from the earlier
// figures to the later ones (both need reps), compared exactly.
func Slipping(earlier, later SideFigures) bool {
	if earlier.Reps == 0 || later.Reps == 0 {
		return false
	}
	// he/re − hl/rl ≥ 15/100
	diff := int64(earlier.HoldsMet)*int64(later.Reps) - int64(later.HoldsMet)*int64(earlier.Reps)
	return 100*diff >= 15*int64(earlier.Reps)*int64(later.Reps)
}

// E1RM is load × (1 + reps/30), to two decimals.
func E1RM(loadKG float64, reps int) float64 {
	return math.Round(loadKG*(1+float64(reps)/30)*100) / 100
}
