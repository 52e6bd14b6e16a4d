package snapshot

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

func testSegment() *Segment {
	s := &Segment{Parent: blobstore.RefOf([]byte("older segment")), ExplicitKnown: true}
	for i := range 50 {
		r := BlobRecord{Ref: blobstore.RefOf([]byte(fmt.Sprint(i))), Compressed: i%3 == 0, CRC32C: [4]byte{byte(i), 1, 2, 3},
			Size: int64(i * 1000), StoredSize: int64(i*1000 + 92), Created: time.Unix(1_700_000_000, int64(i)).UTC()}
		if i%7 == 0 {
			r.Mtime = time.Unix(1_600_000_000, 5).UTC()
		}
		r.Explicit = i%5 == 1
		s.Records = append(s.Records, r)
	}
	return s
}

func TestSegmentRoundTrip(t *testing.T) {
	in := testSegment()
	b, err := EncodeSegment(in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EncodeSegment(&Segment{Parent: in.Parent, ExplicitKnown: true, Records: append([]BlobRecord{in.Records[49]}, in.Records[:49]...)})
	if err != nil || string(again) != string(b) {
		t.Fatalf("the encoding depends on the order records are given in (%v)", err)
	}
	out, err := DecodeSegment(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Parent != in.Parent || len(out.Records) != len(in.Records) || !out.ExplicitKnown {
		t.Fatalf("decoded %d records, parent %s", len(out.Records), out.Parent)
	}
	byRef := map[blobstore.Ref]BlobRecord{}
	for _, r := range out.Records {
		byRef[r.Ref] = r
	}
	for _, r := range in.Records {
		got := byRef[r.Ref]
		if got.Compressed != r.Compressed || got.CRC32C != r.CRC32C || got.Size != r.Size || got.StoredSize != r.StoredSize ||
			!got.Created.Equal(r.Created) || !got.Mtime.Equal(r.Mtime) || got.Explicit != r.Explicit {
			t.Errorf("record %s: got %+v, want %+v", r.Ref, got, r)
		}
	}
}

// TestSegmentExplicitField: field 03 holds one bit per record; a segment
// without it (written before explicit stores were kept) decodes as not
// knowing, and encodes again to the same bytes; a bitmap of the wrong
// length, or with bits past the last record, is corrupt.
func TestSegmentExplicitField(t *testing.T) {
	in := &Segment{ExplicitKnown: true}
	for i := range 10 {
		in.Records = append(in.Records, BlobRecord{Ref: blobstore.Ref{byte(i + 1)}, Created: time.Unix(1, 0).UTC(), Explicit: i == 1 || i == 9})
	}
	b, err := EncodeSegment(in)
	if err != nil {
		t.Fatal(err)
	}
	// The records, then 03, two bytes: bits 1 and 9.
	if tail := b[len(b)-4:]; tail[0] != 0x03 || tail[1] != 2 || tail[2] != 0x02 || tail[3] != 0x02 {
		t.Fatalf("field 03 is % x, want 03 02 02 02", tail)
	}
	old := b[:len(b)-4]
	out, err := DecodeSegment(old)
	if err != nil || out.ExplicitKnown || out.Records[1].Explicit {
		t.Fatalf("a segment without field 03: %+v, %v; want ExplicitKnown false", out, err)
	}
	if again, err := EncodeSegment(out); err != nil || string(again) != string(old) {
		t.Errorf("a segment without field 03 encodes to other bytes (%v)", err)
	}
	for _, bad := range [][]byte{{0x03, 1, 0x02}, {0x03, 3, 0x02, 0x02, 0}, {0x03, 2, 0x02, 0x06}} {
		if _, err := DecodeSegment(append(append([]byte{}, old...), bad...)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("field 03 % x: %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestSegmentRefusesBadInput(t *testing.T) {
	dup := testSegment()
	dup.Records = append(dup.Records, dup.Records[0])
	if _, err := EncodeSegment(dup); !errors.Is(err, ErrInvalid) {
		t.Errorf("a segment listing a ref twice: %v, want ErrInvalid", err)
	}
	b, err := EncodeSegment(testSegment())
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut < len(b); cut += 7 {
		if _, err := DecodeSegment(b[:cut]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a segment cut to %d bytes: %v, want ErrCorrupt", cut, err)
		}
	}
	if _, err := DecodeSegment(append(append([]byte{}, b...), 0)); err == nil {
		t.Error("a segment with a byte after it decoded")
	}
}

func TestRecordIndexField(t *testing.T) {
	r := sampleRecord()
	r.Index = blobstore.RefOf([]byte("segment"))
	b, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeRecord(b)
	if err != nil || out.Index != r.Index {
		t.Fatalf("record index after a round trip: %v, %v", out, err)
	}
}

func FuzzDecodeSegment(f *testing.F) {
	b, _ := EncodeSegment(testSegment())
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSegment(b)
		if err != nil {
			return
		}
		if _, err := EncodeSegment(s); err != nil {
			t.Fatalf("a decoded segment does not encode: %v", err)
		}
	})
}
