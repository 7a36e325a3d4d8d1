package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/repcue/repcue/internal/domain"
	"github.com/repcue/repcue/internal/postgres"
	"github.com/repcue/repcue/internal/progress"
)

// This file serves DESIGN.md §3 "Progress": progression, prescribe, insights,
// cue effectiveness, the coach's overview, the CSV export, PATCH /v1/me and the
// admin's load steps. The rules themselves are in internal/progress.

// MaxBackdate is how far back a set logged offline may start.
const MaxBackdate = 30 * 24 * time.Hour

// clockSkew is how far ahead of the server a phone's started_at may be.
const clockSkew = time.Minute

// validateStartAndSide reads POST /v1/sets' optional started_at and side.
// Whether side is required depends on the variation: the store checks that.
func validateStartAndSide(startedAt, side *string, now time.Time) (*time.Time, string, error) {
	var start *time.Time
	if startedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *startedAt)
		if err != nil {
			return nil, "", domain.Invalid("started_at", "started_at must be an RFC 3339 timestamp")
		}
		if t.Before(now.Add(-MaxBackdate)) || t.After(now.Add(clockSkew)) {
			return nil, "", domain.Invalid("started_at", "started_at must be within the last 30 days and not in the future")
		}
		start = &t
	}
	s := ""
	if side != nil {
		if *side != "left" && *side != "right" {
			return nil, "", domain.Invalid("side", "side must be left or right")
		}
		s = *side
	}
	return start, s, nil
}

func (a *API) today() domain.Date { return domain.DateOf(a.now().UTC()) }

// progressAthlete is the {id} of an athlete progress endpoint that the caller
// may see: the athlete itself or a linked coach; anyone else gets 404.
func (a *API) progressAthlete(c *fiber.Ctx) (uuid.UUID, error) {
	id, err := uuidParam(c, "id", "athlete")
	if err != nil {
		return id, err
	}
	p := principal(c)
	ok, err := a.store.CanWatch(c.UserContext(), p.UserID, p.Role, id)
	if err != nil {
		return id, err
	}
	if !ok {
		return id, domain.NotFound("athlete")
	}
	return id, nil
}

// maxRange: from–to may cover at most a year.
func checkRange(from, to domain.Date) error {
	if from.After(to) {
		return domain.Invalid("from", "from must not be after to")
	}
	if !to.Before(from.AddDate(1, 0, 0)) {
		return domain.Invalid("to", "a range covers at most a year")
	}
	return nil
}

// weeksRange reads from/to; the default is the current ISO week and the 11 before.
func (a *API) weeksRange(c *fiber.Ctx) (domain.Date, domain.Date, error) {
	return a.dateRange(c, func(to domain.Date) domain.Date { return progress.WeekStart(to).AddDate(0, 0, -7*11) })
}

func (a *API) dateRange(c *fiber.Ctx, defaultFrom func(to domain.Date) domain.Date) (domain.Date, domain.Date, error) {
	from, err := dateQuery(c, "from")
	if err != nil {
		return domain.Date{}, domain.Date{}, err
	}
	to, err := dateQuery(c, "to")
	if err != nil {
		return domain.Date{}, domain.Date{}, err
	}
	t := a.today()
	if to != nil {
		t = *to
	}
	f := defaultFrom(t)
	if from != nil {
		f = *from
	}
	return f, t, checkRange(f, t)
}

// Progression is the answer of GET /v1/athletes/{id}/progression.
type Progression struct {
	Exercise         string              `json:"exercise"`
	CurrentVariation string              `json:"current_variation"`
	ReadyToAdvance   bool                `json:"ready_to_advance"`
	NextVariation    *string             `json:"next_variation"`
	EvidenceSetIDs   []uuid.UUID         `json:"evidence_set_ids"`
	Reason           string              `json:"reason"`
	NextLoad         *progress.NextLoad  `json:"next_load"`
	Imbalance        *progress.Imbalance `json:"imbalance"`
}

// progression applies the rules for one athlete and exercise.
func (a *API) progression(ctx context.Context, athleteID uuid.UUID, slug, units string) (Progression, progress.Result, error) {
	ladders, err := a.store.Ladders(ctx, slug)
	if err != nil {
		return Progression{}, progress.Result{}, err
	}
	l := ladders[0]
	if len(l.Rungs) == 0 {
		return Progression{}, progress.Result{}, domain.NotFound("exercise variations")
	}
	sets, err := a.store.ProgressSets(ctx, []uuid.UUID{athleteID}, &l.ExerciseID)
	if err != nil {
		return Progression{}, progress.Result{}, err
	}
	ps := make([]progress.Set, len(sets))
	for i, s := range sets {
		ps[i] = s.Set
	}
	res := progress.Progress(l.Rungs, ps, units)
	out := Progression{Exercise: l.Slug, CurrentVariation: res.Current.Slug, ReadyToAdvance: res.Ready,
		EvidenceSetIDs: res.EvidenceIDs, Reason: res.Reason, NextLoad: res.NextLoad}
	if res.Next != nil {
		out.NextVariation = &res.Next.Slug
	}
	if res.Current.PerSide {
		today := a.today()
		left, right, err := a.store.SideFigures(ctx, athleteID, res.Current.ID, today.AddDate(0, 0, -13), today)
		if err != nil {
			return out, res, err
		}
		out.Imbalance = progress.FindImbalance(left, right)
	}
	return out, res, nil
}

func (a *API) handleProgression(c *fiber.Ctx) error {
	id, err := a.progressAthlete(c)
	if err != nil {
		return err
	}
	slug := c.Query("exercise")
	if slug == "" || len(slug) > 100 {
		return domain.Invalid("exercise", "exercise (a slug) is required")
	}
	units, err := a.store.UnitsOf(c.UserContext(), principal(c).UserID)
	if err != nil {
		return err
	}
	p, _, err := a.progression(c.UserContext(), id, slug, units)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

type prescribeRequest struct {
	Exercise    *string `json:"exercise"`
	ScheduledOn string  `json:"scheduled_on"`
	RepeatWeeks *int    `json:"repeat_weeks"`
}

// startLoad is the first load on the next rung: the current rung's load rounded
// down to the next rung's step when it is judged by load, else body weight (0).
func startLoad(next progress.Rung, current float64) float64 {
	if next.LoadStepKG == nil || *next.LoadStepKG <= 0 {
		return 0
	}
	step := math.Round(*next.LoadStepKG * 100)
	return math.Floor(math.Round(current*100)/step) * step / 100
}

func (a *API) handlePrescribe(c *fiber.Ctx) error {
	id, err := a.progressAthlete(c)
	if err != nil {
		return err
	}
	var req prescribeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	on, err := domain.ParseDate("scheduled_on", req.ScheduledOn)
	if err != nil {
		return err
	}
	today := a.today()
	if on.Before(today) || on.After(today.AddDate(1, 0, 0)) {
		return domain.Invalid("scheduled_on", "scheduled_on must be from today to a year ahead")
	}
	weeks := 1
	if req.RepeatWeeks != nil {
		if weeks = *req.RepeatWeeks; weeks < 1 || weeks > 12 {
			return domain.Invalid("repeat_weeks", "repeat_weeks must be from 1 to 12")
		}
	}
	ctx := c.UserContext()
	slug := ""
	if req.Exercise != nil {
		if slug = *req.Exercise; slug == "" || len(slug) > 100 {
			return domain.Invalid("exercise", "exercise must be an exercise slug")
		}
	} else {
		var ok bool
		if slug, ok, err = a.store.LatestExercise(ctx, id); err != nil {
			return err
		} else if !ok {
			return domain.Invalid("exercise", "the athlete has no ended set yet: name the exercise")
		}
	}
	p, res, err := a.progression(ctx, id, slug, progress.UnitsKG)
	if err != nil {
		return err
	}
	rung, load, notes := res.Current, res.LatestLoadKG, res.Reason
	switch {
	case res.Ready && res.Next != nil:
		rung, load = *res.Next, startLoad(*res.Next, res.LatestLoadKG)
	case p.NextLoad != nil:
		load, notes = p.NextLoad.LoadKG, p.NextLoad.Reason
	}
	ladders, err := a.store.Ladders(ctx, slug)
	if err != nil {
		return err
	}
	hold, ok, err := a.store.LatestPauseHold(ctx, id, ladders[0].ExerciseID)
	if err != nil {
		return err
	}
	if !ok {
		hold = 1000
	}
	if rung.PerSide {
		notes += " Sets are per side."
	}
	if notes, err = domain.CleanText("notes", notes, 0, 1000); err != nil {
		return err
	}
	ps := make([]domain.Prescription, weeks)
	for i := range ps {
		ps[i] = domain.Prescription{CoachID: principal(c).UserID, AthleteID: id, Variation: rung.Slug, Sets: min(rung.Sets, 20),
			Reps: min(rung.Reps, 100), LoadKg: load, PauseHoldMs: hold, ScheduledOn: on.AddDate(0, 0, 7*i), Notes: notes}
	}
	if ps, err = a.store.CreatePrescriptions(ctx, ps); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"items": ps})
}

// Week is one ISO week of insights.
type Week struct {
	WeekStart       domain.Date   `json:"week_start"`
	Sets            int           `json:"sets"`
	Reps            int           `json:"reps"`
	HoldsMet        int           `json:"holds_met"`
	HoldCompliance  *float64      `json:"hold_compliance"`
	VolumeKG        float64       `json:"volume_kg"`
	AvgConcentricMS *int          `json:"avg_concentric_ms"`
	AvgEccentricMS  *int          `json:"avg_eccentric_ms"`
	BestE1RMKG      *float64      `json:"best_e1rm_kg"`
	Mistakes        []WeekMistake `json:"mistakes"`
}

// WeekMistake is a mistake and how often it was flagged or detected in a week.
type WeekMistake struct {
	MistakeID uuid.UUID `json:"mistake_id"`
	Name      string    `json:"name"`
	Count     int       `json:"count"`
}

func avgMS(sum, n int64) *int {
	if n == 0 {
		return nil
	}
	v := int((sum + n/2) / n)
	return &v
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func (a *API) handleInsights(c *fiber.Ctx) error {
	id, err := a.progressAthlete(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	var exerciseID *uuid.UUID
	if slug := c.Query("exercise"); slug != "" {
		if len(slug) > 100 {
			return domain.NotFound("exercise")
		}
		ladders, err := a.store.Ladders(ctx, slug)
		if err != nil {
			return err
		}
		exerciseID = &ladders[0].ExerciseID
	}
	from, to, err := a.weeksRange(c)
	if err != nil {
		return err
	}
	figures, err := a.store.Insights(ctx, id, exerciseID, from, to)
	if err != nil {
		return err
	}
	weeks := []Week{}
	for _, ws := range progress.Weeks(from, to) {
		w := Week{WeekStart: ws, Mistakes: []WeekMistake{}}
		if f := figures[ws]; f != nil {
			w.Sets, w.Reps, w.HoldsMet, w.VolumeKG = f.Sets, f.Reps, f.HoldsMet, round2(f.VolumeKG)
			if f.Reps > 0 {
				r := progress.Ratio(f.HoldsMet, f.Reps)
				w.HoldCompliance = &r
			}
			w.AvgConcentricMS, w.AvgEccentricMS = avgMS(f.ConcSum, f.ConcN), avgMS(f.EccSum, f.EccN)
			if f.BestE1RM != nil {
				e := round2(*f.BestE1RM)
				w.BestE1RMKG = &e
			}
			for _, m := range f.Mistakes {
				w.Mistakes = append(w.Mistakes, WeekMistake{MistakeID: m.ID, Name: m.Name, Count: m.Count})
			}
		}
		weeks = append(weeks, w)
	}
	return c.JSON(fiber.Map{"weeks": weeks})
}

// CueEffect is one cue text's effect.
type CueEffect struct {
	CueID              *uuid.UUID `json:"cue_id"`
	Text               string     `json:"text"`
	Source             string     `json:"source"`
	Sent               int        `json:"sent"`
	Acknowledged       int        `json:"acknowledged"`
	NextRepHoldMetRate *float64   `json:"next_rep_hold_met_rate"`
}

func rate(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := progress.Ratio(n, d)
	return &r
}

func (a *API) handleCueEffectiveness(c *fiber.Ctx) error {
	ctx := c.UserContext()
	coachID := principal(c).UserID
	var athletes []uuid.UUID
	if id, ok, err := uuidQuery(c, "athlete_id"); err != nil {
		return err
	} else if ok {
		if linked, err := a.store.CoachLinked(ctx, coachID, id); err != nil {
			return err
		} else if !linked {
			return domain.NotFound("athlete")
		}
		athletes = []uuid.UUID{id}
	} else {
		linked, err := a.store.LinkedCoachAthletes(ctx, coachID)
		if err != nil {
			return err
		}
		athletes = linked
	}
	from, to, err := a.dateRange(c, func(to domain.Date) domain.Date { return to.AddDate(0, 0, -27) })
	if err != nil {
		return err
	}
	groups, base, err := a.store.CueEffectiveness(ctx, athletes, from, to)
	if err != nil {
		return err
	}
	items := make([]CueEffect, len(groups))
	for i, g := range groups {
		items[i] = CueEffect{CueID: g.CueID, Text: g.Text, Source: g.Source, Sent: g.Sent, Acknowledged: g.Acknowledged,
			NextRepHoldMetRate: rate(g.FollowedHeld, g.Followed)}
	}
	return c.JSON(fiber.Map{"baseline_hold_met_rate": rate(base.HoldsMet, base.Reps), "items": items})
}

// OverviewItem is one athlete on the coach's overview.
type OverviewItem struct {
	AthleteID            uuid.UUID    `json:"athlete_id"`
	DisplayName          string       `json:"display_name"`
	LiveSetID            *uuid.UUID   `json:"live_set_id"`
	LastSetOn            *domain.Date `json:"last_set_on"`
	SetsLast7d           int          `json:"sets_last_7d"`
	HoldComplianceLast7d *float64     `json:"hold_compliance_last_7d"`
	ReadyToAdvance       bool         `json:"ready_to_advance"`
	Attention            []string     `json:"attention"`
}

func (a *API) handleOverview(c *fiber.Ctx) error {
	ctx := c.UserContext()
	rows, err := a.store.Overview(ctx, principal(c).UserID, a.today())
	if err != nil {
		return err
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.AthleteID
	}
	ladders, err := a.store.Ladders(ctx, "")
	if err != nil {
		return err
	}
	sets, err := a.store.ProgressSets(ctx, ids, nil)
	if err != nil {
		return err
	}
	type key struct{ athlete, exercise uuid.UUID }
	grouped := map[key][]progress.Set{}
	for _, s := range sets {
		k := key{s.AthleteID, s.ExerciseID}
		grouped[k] = append(grouped[k], s.Set)
	}
	ready, deload := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	for _, l := range ladders {
		if len(l.Rungs) == 0 {
			continue
		}
		for _, id := range ids {
			ps := grouped[key{id, l.ExerciseID}]
			if len(ps) == 0 {
				continue // never trained: the lowest rung, neither ready nor loaded
			}
			res := progress.Progress(l.Rungs, ps, progress.UnitsKG)
			ready[id] = ready[id] || res.Ready
			deload[id] = deload[id] || res.NextLoad != nil && res.NextLoad.Action == progress.ActionDeload
		}
	}
	items := make([]OverviewItem, len(rows))
	for i, r := range rows {
		it := OverviewItem{AthleteID: r.AthleteID, DisplayName: r.DisplayName, LiveSetID: r.LiveSetID, LastSetOn: r.LastSetOn,
			SetsLast7d: r.Sets7, HoldComplianceLast7d: rate(r.Last7.HoldsMet, r.Last7.Reps), ReadyToAdvance: ready[r.AthleteID],
			Attention: []string{}}
		if r.Sets7 == 0 {
			it.Attention = append(it.Attention, "no_sets_7d")
		}
		if progress.Slipping(r.Prior7, r.Last7) {
			it.Attention = append(it.Attention, "holds_slipping")
		}
		if it.ReadyToAdvance {
			it.Attention = append(it.Attention, "ready_to_advance")
		}
		if deload[r.AthleteID] {
			it.Attention = append(it.Attention, "deload_suggested")
		}
		items[i] = it
	}
	sort.SliceStable(items, func(i, j int) bool {
		x, y := items[i], items[j]
		if len(x.Attention) != len(y.Attention) {
			return len(x.Attention) > len(y.Attention)
		}
		if x.DisplayName != y.DisplayName {
			return x.DisplayName < y.DisplayName
		}
		return x.AthleteID.String() < y.AthleteID.String()
	})
	return c.JSON(fiber.Map{"items": items})
}

func (a *API) handleSetsCSV(c *fiber.Ctx) error {
	id, err := a.progressAthlete(c)
	if err != nil {
		return err
	}
	from, to, err := a.weeksRange(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"set_id", "day", "variation", "side", "load_kg", "rep", "concentric_ms", "hold_ms", "eccentric_ms", "hold_met"})
	optInt := func(p *int) string {
		if p == nil {
			return ""
		}
		return strconv.Itoa(*p)
	}
	err = a.store.EachRepCSV(c.UserContext(), id, from, to, func(r postgres.CSVRow) error {
		side := ""
		if r.Side != nil {
			side = *r.Side
		}
		return w.Write([]string{r.SetID.String(), r.Day.String(), r.Variation, side, strconv.FormatFloat(r.LoadKG, 'f', -1, 64),
			strconv.Itoa(r.Rep), optInt(r.ConcentricMS), optInt(r.HoldMS), optInt(r.EccentricMS), strconv.FormatBool(r.HoldMet)})
	})
	if err != nil {
		return err
	}
	w.Flush()
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="sets-`+from.String()+`-`+to.String()+`.csv"`)
	return c.Send(buf.Bytes())
}

type mePatchRequest struct {
	DisplayName optional[string] `json:"display_name"`
	Units       optional[string] `json:"units"`
}

func (a *API) handlePatchMe(c *fiber.Ctx) error {
	var req mePatchRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	name, err := req.DisplayName.ptr("display_name")
	if err != nil {
		return err
	}
	units, err := req.Units.ptr("units")
	if err != nil {
		return err
	}
	if name == nil && units == nil {
		return domain.Invalid("", "send display_name and/or units")
	}
	if name != nil {
		n, err := domain.CleanText("display_name", *name, 1, 100)
		if err != nil {
			return err
		}
		name = &n
	}
	if units != nil && *units != progress.UnitsKG && *units != progress.UnitsLB {
		return domain.Invalid("units", "units must be kg or lb")
	}
	p, err := a.store.UpdateProfile(c.UserContext(), principal(c).UserID, name, units)
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return domain.Errorf(domain.CodeUnauthorized, "the account no longer exists or is disabled")
		}
		return err
	}
	return c.JSON(p)
}

type variationPatchRequest struct {
	LoadStepKG optional[float64] `json:"load_step_kg"`
}

func (a *API) handleUpdateVariation(c *fiber.Ctx) error {
	id, err := uuidParam(c, "id", "variation")
	if err != nil {
		return err
	}
	match, err := ifMatch(c, true)
	if err != nil {
		return err
	}
	var req variationPatchRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if !req.LoadStepKG.set {
		return domain.Invalid("load_step_kg", "send load_step_kg (a number, or null for none)")
	}
	p := postgres.VariationPatch{SetLoadStepKG: true}
	if !req.LoadStepKG.null {
		step := req.LoadStepKG.v
		if step <= 0 || step > 100 || math.Abs(step*100-math.Round(step*100)) > 1e-6 {
			return domain.Invalid("load_step_kg", "load_step_kg must be above 0, at most 100, with at most two decimals")
		}
		p.LoadStepKG = &step
	}
	v, err := a.store.UpdateVariation(c.UserContext(), principal(c).UserID, id, match, p)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, versionETag(v.Version))
	return c.JSON(v)
}
