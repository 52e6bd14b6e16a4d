package snapshot

import (
	"time"
)

// nameLayout is how a record is named: its time in UTC to the nanosecond,
// with '-' for ':' so that the name is safe on every filesystem (and in
// snapshots/<collection>/ of a mount), always 30 bytes so that names sort
// as times do.
const nameLayout = "2006-01-02T15-04-05.000000000Z"

// RecordNameLen is the length of every record name.
const RecordNameLen = len(nameLayout)

// RecordName returns the name of the record taken at t, for example
// "2026-12-01T09-30-05.123456789Z". Names of records sort by time. t must
// be in years 1..9999 (UTC); errors wrap ErrInvalid.
func RecordName(t time.Time) (string, error) {
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return "", invalid("snapshot time %v outside years 1..9999", t)
	}
	return t.Format(nameLayout), nil
}

// ParseRecordName returns the time a record name stands for. Only the
// exact form RecordName writes is accepted; errors wrap ErrInvalid.
func ParseRecordName(name string) (time.Time, error) {
	if len(name) != RecordNameLen {
		return time.Time{}, invalid("%q is not a snapshot name (want the form %s)", truncateName(name), nameLayout)
	}
	t, err := time.Parse(nameLayout, name)
	if err != nil {
		return time.Time{}, invalid("%q is not a snapshot name: %v", name, err)
	}
	if again, err := RecordName(t); err != nil || again != name {
		return time.Time{}, invalid("%q is not a snapshot name in canonical form", name)
	}
	return t, nil
}

// NextTime returns the time to give a new snapshot taken at now when the
// collection's latest snapshot was taken at last: now in UTC, or one
// nanosecond after last if the clock has not moved past it (a coarse
// clock, or one stepped back), so that names stay distinct and ascending.
func NextTime(now, last time.Time) time.Time {
	now = now.UTC().Round(0) // no monotonic reading: the time is stored
	if !now.After(last) {
		return last.Add(time.Nanosecond).UTC().Round(0)
	}
	return now
}
