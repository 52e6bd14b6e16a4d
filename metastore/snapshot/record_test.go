package snapshot

import (
	"errors"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

func sampleRecord() *Record {
	return &Record{
		Time: epoch,
		Root: Entry{Name: "photos", Kind: KindDir, Ino: 1<<62 | 1, Mode: 0o755, UID: 1000, GID: 1000,
			Mtime: epoch.Add(-time.Hour), Ctime: epoch.Add(-time.Hour), Ref: blobstore.RefOf([]byte("root tree"))},
		Parent:    "2026-11-30T22-00-00.000000001Z",
		ParentRef: blobstore.RefOf([]byte("parent record")),
		Writer:    "stofuse 0.4.0",
	}
}

func TestRecordRoundTrip(t *testing.T) {
	first := sampleRecord()
	first.Parent, first.ParentRef, first.Writer = "", blobstore.Ref{}, ""
	for _, r := range []*Record{sampleRecord(), first} {
		b, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(r.Time) || !got.Root.Equal(&r.Root) || got.Parent != r.Parent ||
			got.ParentRef != r.ParentRef || got.Writer != r.Writer || got.Collection() != "photos" {
			t.Fatalf("decoded %+v, want %+v", got, r)
		}
		again, _ := EncodeRecord(got)
		if string(again) != string(b) {
			t.Fatal("re-encoding a decoded record gives other bytes")
		}
	}
}

func TestRecordRefusesInvalid(t *testing.T) {
	for name, change := range map[string]func(*Record){
		"root is a file":      func(r *Record) { r.Root.Kind, r.Root.StoredSize = KindFile, 1 },
		"root without a tree": func(r *Record) { r.Root.Ref = blobstore.Ref{} },
		"parent without ref":  func(r *Record) { r.ParentRef = blobstore.Ref{} },
		"ref without parent":  func(r *Record) { r.Parent = "" },
		"parent not a name":   func(r *Record) { r.Parent = "yesterday" },
		"parent not older":    func(r *Record) { r.Parent, _ = RecordName(r.Time) },
		"year 10000":          func(r *Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 0":              func(r *Record) { r.Time = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) },
		"writer control":      func(r *Record) { r.Writer = "stofuse\n" },
		"writer not utf-8":    func(r *Record) { r.Writer = "\xff" },
	} {
		r := sampleRecord()
		change(r)
		if _, err := EncodeRecord(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: EncodeRecord = %v, want ErrInvalid", name, err)
		}
	}
}

func TestRecordNames(t *testing.T) {
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 1, 9, 30, 5, 0, time.UTC),
		time.Date(2026, 12, 1, 9, 30, 5, 1, time.UTC),
		time.Date(2026, 12, 1, 9, 30, 5, 10, time.FixedZone("CET", 3600)).Add(time.Hour),
		time.Date(2026, 12, 1, 9, 30, 6, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	var names []string
	for _, tm := range times {
		name, err := RecordName(tm)
		if err != nil {
			t.Fatal(err)
		}
		if len(name) != RecordNameLen {
			t.Fatalf("%q is %d bytes, want %d", name, len(name), RecordNameLen)
		}
		back, err := ParseRecordName(name)
		if err != nil || !back.Equal(tm) {
			t.Fatalf("ParseRecordName(%q) = %v, %v; want %v", name, back, err, tm)
		}
		names = append(names, name)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("names do not sort as times do: %q before %q", names[i-1], names[i])
		}
	}
	if names[2] != "2026-12-01T09-30-05.000000000Z" {
		t.Fatalf("name %q", names[2])
	}
	for _, bad := range []string{"", "2026-12-01T09:30:05.000000000Z", "2026-12-01T09-30-05Z",
		"2026-12-01T09-30-05.000000000z", "2026-13-01T09-30-05.000000000Z", "2026-12-01T09-30-05.00000000Z0",
		"2026-12-01t09-30-05.000000000Z", "+026-12-01T09-30-05.000000000Z"} {
		if _, err := ParseRecordName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRecordName(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestNextTime(t *testing.T) {
	last := epoch
	for _, now := range []time.Time{epoch.Add(-time.Hour), epoch, time.Now()} {
		next := NextTime(now, last)
		if !next.After(last) || next.Location() != time.UTC {
			t.Fatalf("NextTime(%v, %v) = %v", now, last, next)
		}
	}
	if got := NextTime(epoch, epoch); !got.Equal(epoch.Add(time.Nanosecond)) {
		t.Fatalf("NextTime in the same nanosecond = %v", got)
	}
}
