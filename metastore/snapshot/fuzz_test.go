package snapshot

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

func addGoldenSeeds(f *testing.F, names ...string) {
	for _, name := range names {
		b, err := readTestdata(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecode: DecodeNode never panics, fails with ErrCorrupt or
// ErrUnsupported, and what it accepts encodes back to the same bytes,
// shorter only by the unknown optional fields it skipped.
func FuzzDecode(f *testing.F) {
	addGoldenSeeds(f, "leaf-empty.tree", "leaf-one.tree", "leaf-sample.tree", "leaf-special.tree", "index.tree")
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrUnsupported", err)
			}
			return
		}
		again, err := EncodeNode(n)
		if err != nil {
			t.Fatalf("a decoded node does not encode: %v", err)
		}
		if len(again) > len(b) || len(again) == len(b) && string(again) != string(b) {
			t.Fatal("a decoded node encodes to other bytes")
		}
		if n2, err := DecodeNode(again); err != nil || !sameNode(n, n2) {
			t.Fatalf("re-encoded node decodes otherwise: %v", err)
		}
	})
}

// FuzzDecodeRecord holds DecodeRecord to the same rules.
func FuzzDecodeRecord(f *testing.F) {
	addGoldenSeeds(f, "record.snap")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrUnsupported", err)
			}
			return
		}
		again, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		if len(again) > len(b) || len(again) == len(b) && string(again) != string(b) {
			t.Fatal("a decoded record encodes to other bytes")
		}
	})
}

// FuzzParseRecordName: a name that parses is the name of its time.
func FuzzParseRecordName(f *testing.F) {
	f.Add("2026-12-01T09-30-05.123456789Z")
	f.Add("0001-01-01T00-00-00.000000000Z")
	f.Fuzz(func(t *testing.T, name string) {
		tm, err := ParseRecordName(name)
		if err != nil {
			return
		}
		if again, err := RecordName(tm); err != nil || again != name {
			t.Fatalf("%q parses to %v, named %q (%v)", name, tm, again, err)
		}
	})
}

// FuzzReader gives the Cursor and Lookup a fuzzed root over real leaves:
// the seed is a real index, so mutations forge names, counts and refs that
// the bounds checks must catch. Whatever it reads is in order and as
// many entries as the root says.
func FuzzReader(f *testing.F) {
	store := newMemStore()
	root := buildBig(f, 5000, store.emit, nil)
	f.Add(store.blobs[root], bigName(1234))
	f.Fuzz(func(t *testing.T, rootBlob []byte, name string) {
		fuzzRoot := blobstore.RefOf(rootBlob)
		load := func(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
			if ref == fuzzRoot {
				return rootBlob, nil
			}
			return store.load(ctx, ref)
		}
		ctx := context.Background()
		r := NewReader(load, fuzzRoot)
		_, _ = r.Lookup(ctx, name)
		c, err := r.Entries(ctx, 0)
		var last string
		var count uint64
		for err == nil {
			var e Entry
			if e, err = c.Next(ctx); err == nil {
				if count > 0 && e.Name <= last {
					t.Fatalf("entry %q after %q", e.Name, last)
				}
				last, count = e.Name, count+1
			}
		}
		if err == io.EOF {
			if n, err := r.Len(ctx); err != nil || n != count {
				t.Fatalf("read %d entries, Len says %d (%v)", count, n, err)
			}
		}
	})
}
