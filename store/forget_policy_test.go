package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stofuse/stofuse/store"
)

// series returns n times, the first at start and each step after the one
// before.
func series(start string, n int, step time.Duration) []string {
	t0, err := time.Parse(time.RFC3339, start)
	if err != nil {
		panic(err)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = t0.Add(time.Duration(i) * step).Format(time.RFC3339)
	}
	return out
}

// TestApplyRetention holds the policy to restic's meaning on synthetic
// series: each want line is one snapshot, newest first, with the rules
// that keep it or "-" when it is forgotten.
func TestApplyRetention(t *testing.T) {
	sundays := series("2019-09-01T11:00:00Z", 12, 7*24*time.Hour)
	tests := []struct {
		name   string
		times  []string
		policy store.RetentionPolicy
		want   []string
	}{
		{
			// restic's example: one backup every Sunday for 12 weeks.
			name: "daily counts only the days that have snapshots", times: sundays,
			policy: store.RetentionPolicy{Daily: 4},
			want: []string{
				"2019-11-17T11:00:00Z daily", "2019-11-10T11:00:00Z daily", "2019-11-03T11:00:00Z daily", "2019-10-27T11:00:00Z daily",
				"2019-10-20T11:00:00Z -", "2019-10-13T11:00:00Z -", "2019-10-06T11:00:00Z -", "2019-09-29T11:00:00Z -",
				"2019-09-22T11:00:00Z -", "2019-09-15T11:00:00Z -", "2019-09-08T11:00:00Z -", "2019-09-01T11:00:00Z -",
			},
		},
		{
			name: "last", times: []string{"2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"},
			policy: store.RetentionPolicy{Last: 2},
			want:   []string{"2026-01-01T00:00:03Z last", "2026-01-01T00:00:02Z last", "2026-01-01T00:00:01Z -", "2026-01-01T00:00:00Z -"},
		},
		{
			// Every 20 minutes for two hours: the newest of each of the
			// last 3 hours.
			name: "hourly keeps the newest of each hour", times: series("2026-03-01T10:00:00Z", 7, 20*time.Minute),
			policy: store.RetentionPolicy{Hourly: 3},
			want: []string{
				"2026-03-01T12:00:00Z hourly", "2026-03-01T11:40:00Z hourly", "2026-03-01T11:20:00Z -", "2026-03-01T11:00:00Z -",
				"2026-03-01T10:40:00Z hourly", "2026-03-01T10:20:00Z -", "2026-03-01T10:00:00Z -",
			},
		},
		{
			// Days are UTC calendar days: 23:59 and 00:01 are two days.
			name: "days end at midnight UTC", times: []string{"2026-03-01T00:01:00Z", "2026-02-28T23:59:00Z", "2026-02-28T12:00:00Z", "2026-02-27T12:00:00Z"},
			policy: store.RetentionPolicy{Daily: 2},
			want:   []string{"2026-03-01T00:01:00Z daily", "2026-02-28T23:59:00Z daily", "2026-02-28T12:00:00Z -", "2026-02-27T12:00:00Z -"},
		},
		{
			// A snapshot kept by any rule is kept; the reasons add up.
			name: "rules are ORed", times: []string{"2026-05-10T09:00:00Z", "2026-05-10T18:00:00Z", "2026-05-11T09:00:00Z", "2026-05-11T18:00:00Z", "2026-05-12T09:00:00Z"},
			policy: store.RetentionPolicy{Last: 2, Daily: 2},
			want: []string{
				"2026-05-12T09:00:00Z last, daily", "2026-05-11T18:00:00Z last, daily", "2026-05-11T09:00:00Z -",
				"2026-05-10T18:00:00Z -", "2026-05-10T09:00:00Z -",
			},
		},
		{
			// ISO weeks start on Monday: Sunday 2026-03-08 and Monday
			// 2026-03-09 are in two weeks, Monday and Friday in one.
			name: "weeks start on Monday", times: []string{"2026-03-13T10:00:00Z", "2026-03-09T10:00:00Z", "2026-03-08T10:00:00Z", "2026-03-02T10:00:00Z", "2026-03-01T10:00:00Z"},
			policy: store.RetentionPolicy{Weekly: 2},
			want:   []string{"2026-03-13T10:00:00Z weekly", "2026-03-09T10:00:00Z -", "2026-03-08T10:00:00Z weekly", "2026-03-02T10:00:00Z -", "2026-03-01T10:00:00Z -"},
		},
		{
			// A year's boundary: ISO week 1 of 2027 begins on Monday
			// 2026-12-28, so 2026-12-31 and 2027-01-02 share a week.
			name: "a week across new year", times: []string{"2027-01-02T10:00:00Z", "2026-12-31T10:00:00Z", "2026-12-27T10:00:00Z"},
			policy: store.RetentionPolicy{Weekly: 2},
			want:   []string{"2027-01-02T10:00:00Z weekly", "2026-12-31T10:00:00Z -", "2026-12-27T10:00:00Z weekly"},
		},
		{
			name: "monthly and yearly", times: []string{"2024-06-30T10:00:00Z", "2025-01-15T10:00:00Z", "2025-12-01T10:00:00Z", "2025-12-31T10:00:00Z", "2026-01-01T10:00:00Z", "2026-01-20T10:00:00Z"},
			policy: store.RetentionPolicy{Monthly: 2, Yearly: 3},
			want: []string{
				"2026-01-20T10:00:00Z monthly, yearly", "2026-01-01T10:00:00Z -", "2025-12-31T10:00:00Z monthly, yearly",
				"2025-12-01T10:00:00Z -", "2025-01-15T10:00:00Z -", "2024-06-30T10:00:00Z yearly",
			},
		},
		{
			// Counts left when the oldest is reached keep the oldest too,
			// even in a period already counted.
			name: "a young series keeps its oldest", times: []string{"2026-04-01T08:00:00Z", "2026-04-01T20:00:00Z", "2026-04-02T08:00:00Z"},
			policy: store.RetentionPolicy{Daily: 7},
			want:   []string{"2026-04-02T08:00:00Z daily", "2026-04-01T20:00:00Z daily", "2026-04-01T08:00:00Z oldest daily"},
		},
		{
			// A count used up exactly at the oldest keeps nothing more.
			name: "a count used up keeps no oldest", times: []string{"2026-04-01T08:00:00Z", "2026-04-01T20:00:00Z", "2026-04-02T08:00:00Z"},
			policy: store.RetentionPolicy{Daily: 1},
			want:   []string{"2026-04-02T08:00:00Z daily", "2026-04-01T20:00:00Z -", "2026-04-01T08:00:00Z -"},
		},
		{
			name: "the order given does not matter", times: []string{"2026-05-11T09:00:00Z", "2026-05-12T09:00:00Z", "2026-05-10T09:00:00Z"},
			policy: store.RetentionPolicy{Last: 1},
			want:   []string{"2026-05-12T09:00:00Z last", "2026-05-11T09:00:00Z -", "2026-05-10T09:00:00Z -"},
		},
		{
			name: "one snapshot", times: []string{"2026-05-11T09:00:00Z"}, policy: store.RetentionPolicy{Monthly: 1},
			want: []string{"2026-05-11T09:00:00Z monthly"},
		},
		{name: "no snapshot", policy: store.RetentionPolicy{Last: 3}},
		{
			// Nanoseconds apart, as two snapshots within one second are.
			name: "nanosecond names", times: []string{"2026-05-11T09:00:00.000000001Z", "2026-05-11T09:00:00.000000002Z"},
			policy: store.RetentionPolicy{Hourly: 5},
			want:   []string{"2026-05-11T09:00:00.000000002Z hourly", "2026-05-11T09:00:00.000000001Z oldest hourly"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
			var times []time.Time
			for _, s := range tt.times {
				v, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					t.Fatal(err)
				}
				times = append(times, v)
			}
			var got []string
			for _, r := range store.ApplyRetention(times, tt.policy) {
				reasons := strings.Join(r.Reasons, ", ")
				if !r.Keep {
					reasons = "-"
				}
				if r.Keep == (len(r.Reasons) == 0) {
					t.Errorf("%s: keep %v with reasons %q", r.Time, r.Keep, r.Reasons)
				}
				got = append(got, r.Time.Format(time.RFC3339Nano)+" "+reasons)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("%s:\ngot:\n%s\nwant:\n%s", tt.policy, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRetentionNeverForgetsTheNewest: every policy with a rule keeps the
// newest snapshot of any series, and a policy without one is refused.
func TestRetentionNeverForgetsTheNewest(t *testing.T) {
	times := []time.Time{}
	for _, s := range series("2020-01-01T00:00:00Z", 400, 37*time.Hour+13*time.Minute) {
		v, _ := time.Parse(time.RFC3339, s)
		times = append(times, v)
	}
	for _, p := range []store.RetentionPolicy{{Last: 1}, {Hourly: 1}, {Daily: 1}, {Weekly: 1}, {Monthly: 1}, {Yearly: 1}, {Daily: 3, Monthly: 100}} {
		got := store.ApplyRetention(times, p)
		if !got[0].Keep || !got[0].Time.Equal(times[len(times)-1]) {
			t.Errorf("%s: the newest snapshot: %+v", p, got[0])
		}
	}
	if err := (store.RetentionPolicy{}).Check(); !errors.Is(err, store.ErrEmptyPolicy) || !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Check of an empty policy: %v", err)
	}
	if err := (store.RetentionPolicy{Daily: -1, Last: 2}).Check(); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Check of a negative count: %v", err)
	}
}
