package snapshot

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

func testSegment() *Segment {
	s := &Segment{Parent: blobstore.RefOf([]byte("older segment"))}
	for i := range 50 {
		r := BlobRecord{Ref: blobstore.RefOf([]byte(fmt.Sprint(i))), Compressed: i%3 == 0, CRC32C: [4]byte{byte(i), 1, 2, 3},
			Size: int64(i * 1000), StoredSize: int64(i*1000 + 92), Created: time.Unix(1_700_000_000, int64(i)).UTC()}
		if i%7 == 0 {
			r.Mtime = time.Unix(1_600_000_000, 5).UTC()
		}
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
	again, err := EncodeSegment(&Segment{Parent: in.Parent, Records: append([]BlobRecord{in.Records[49]}, in.Records[:49]...)})
	if err != nil || string(again) != string(b) {
		t.Fatalf("the encoding depends on the order records are given in (%v)", err)
	}
	out, err := DecodeSegment(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Parent != in.Parent || len(out.Records) != len(in.Records) {
		t.Fatalf("decoded %d records, parent %s", len(out.Records), out.Parent)
	}
	byRef := map[blobstore.Ref]BlobRecord{}
	for _, r := range out.Records {
		byRef[r.Ref] = r
	}
	for _, r := range in.Records {
		got := byRef[r.Ref]
		if got.Compressed != r.Compressed || got.CRC32C != r.CRC32C || got.Size != r.Size || got.StoredSize != r.StoredSize ||
			!got.Created.Equal(r.Created) || !got.Mtime.Equal(r.Mtime) {
			t.Errorf("record %s: got %+v, want %+v", r.Ref, got, r)
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
