package store

import (
	"fmt"
	"slices"
	"time"
)

// RetentionPolicy says which snapshots of a collection Forget keeps, with
// restic's rules and names. Each count is a rule; a snapshot that any rule
// keeps is kept (the rules are ORed), and every other one is forgotten:
//
//   - Last keeps the Last newest snapshots;
//   - Hourly, Daily, Weekly, Monthly and Yearly keep, for each of the N
//     newest hours (days, ISO weeks from Monday, months, years) that have
//     at least one snapshot, the newest snapshot of that period. Periods
//     with no snapshot are not counted: "daily 7" keeps one snapshot for
//     each of the last 7 days on which one was taken, however far apart.
//
// Periods are calendar periods in UTC, as snapshot names are. A rule whose
// count is not used up when the oldest snapshot is reached keeps the
// oldest too ("oldest daily"), as restic 0.17 does, so that a young
// series keeps its whole history. A count of 0 is no rule; a policy with
// no rule at all is refused (it would forget everything). Whatever the
// rules, the newest snapshot is always kept.
type RetentionPolicy struct {
	Last    int `json:"last,omitempty"`
	Hourly  int `json:"hourly,omitempty"`
	Daily   int `json:"daily,omitempty"`
	Weekly  int `json:"weekly,omitempty"`
	Monthly int `json:"monthly,omitempty"`
	Yearly  int `json:"yearly,omitempty"`
}

// ErrEmptyPolicy: a retention policy without any rule, which would forget
// every snapshot. It satisfies errors.Is(err, ErrInvalid).
var ErrEmptyPolicy = invalidf("a retention policy without a rule would forget every snapshot")

// Check returns ErrEmptyPolicy for a policy without rules, and an
// ErrInvalid error for a negative count.
func (p RetentionPolicy) Check() error {
	for _, r := range p.rules() {
		if r.count < 0 {
			return invalidf("keep %s %d: a count is 0 or more", r.name, r.count)
		}
	}
	if p == (RetentionPolicy{}) {
		return ErrEmptyPolicy
	}
	return nil
}

// retentionRule is one of a policy's counts and the period it counts in.
type retentionRule struct {
	name   string
	count  int
	period func(t time.Time, index int) int64 // snapshots in one period give one value
}

func (p RetentionPolicy) rules() []retentionRule {
	return []retentionRule{
		{"last", p.Last, func(_ time.Time, index int) int64 { return int64(index) }},
		{"hourly", p.Hourly, func(t time.Time, _ int) int64 { return day(t)*100 + int64(t.Hour()) }},
		{"daily", p.Daily, func(t time.Time, _ int) int64 { return day(t) }},
		{"weekly", p.Weekly, func(t time.Time, _ int) int64 {
			year, week := t.ISOWeek()
			return int64(year)*100 + int64(week)
		}},
		{"monthly", p.Monthly, func(t time.Time, _ int) int64 { return int64(t.Year())*100 + int64(t.Month()) }},
		{"yearly", p.Yearly, func(t time.Time, _ int) int64 { return int64(t.Year()) }},
	}
}

// day is t's calendar day as YYYYMMDD.
func day(t time.Time) int64 { return int64(t.Year())*10000 + int64(t.Month())*100 + int64(t.Day()) }

// Retention is what a policy decided for one snapshot.
type Retention struct {
	Time time.Time `json:"time"`
	Keep bool      `json:"keep"`
	// Reasons names the rules that keep it ("last", "daily", "oldest
	// monthly", "newest"), in the policy's order; none when forgotten.
	Reasons []string `json:"reasons,omitempty"`
}

// ApplyRetention decides, for snapshots taken at times (in any order, no
// two equal), which policy p keeps; the decisions come newest first. It is
// a pure function of its arguments: the same series and policy always
// give the same decisions.
func ApplyRetention(times []time.Time, p RetentionPolicy) []Retention {
	out := make([]Retention, len(times))
	for i, t := range times {
		out[i] = Retention{Time: t.UTC()}
	}
	slices.SortStableFunc(out, func(a, b Retention) int { return b.Time.Compare(a.Time) })
	for _, rule := range p.rules() {
		if rule.count > 0 {
			applyRule(out, rule)
		}
	}
	if len(out) > 0 && !out[0].Keep {
		out[0].Keep, out[0].Reasons = true, []string{"newest"}
	}
	return out
}

// applyRule marks the snapshots one rule keeps in decisions, newest
// first: the first of each new period while the count lasts, and the
// oldest if the count is not used up by then.
func applyRule(decisions []Retention, rule retentionRule) {
	left := rule.count
	var last int64
	for i := range decisions {
		if left == 0 {
			return
		}
		value := rule.period(decisions[i].Time, i)
		oldest := i == len(decisions)-1
		switch {
		case i == 0 || value != last:
			keep(&decisions[i], rule.name)
			left--
			last = value
		case oldest:
			keep(&decisions[i], "oldest "+rule.name)
		}
	}
}

func keep(r *Retention, reason string) {
	r.Keep = true
	r.Reasons = append(r.Reasons, reason)
}

// String describes a policy as a user gives it.
func (p RetentionPolicy) String() string {
	s := ""
	for _, r := range p.rules() {
		if r.count > 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s %d", r.name, r.count)
		}
	}
	if s == "" {
		return "no rule"
	}
	return "keep " + s
}
