package snapshot

import (
	"context"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

const benchEntries = 1_000_000

// BenchmarkBuild builds a directory of a million files from scratch,
// hashing every blob but storing none.
func BenchmarkBuild(b *testing.B) {
	var treeBytes, blobs int
	emit := func(_ context.Context, _ blobstore.Ref, plain []byte) error {
		treeBytes += len(plain)
		blobs++
		return nil
	}
	b.ReportAllocs()
	for range b.N {
		treeBytes, blobs = 0, 0
		buildBig(b, benchEntries, emit, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEntries), "ns/entry")
	b.ReportMetric(float64(treeBytes)/benchEntries, "treebytes/entry")
	b.ReportMetric(float64(blobs), "blobs")
}

// BenchmarkBuildIncremental rebuilds the million-file directory with one
// file changed and one added, and counts the blobs that the first build
// did not emit: what a second snapshot stores.
func BenchmarkBuildIncremental(b *testing.B) {
	seen := map[blobstore.Ref]bool{}
	buildBig(b, benchEntries, func(_ context.Context, ref blobstore.Ref, _ []byte) error {
		seen[ref] = true
		return nil
	}, nil)
	var fresh, freshBytes int
	b.ResetTimer()
	for k := range b.N {
		fresh, freshBytes = 0, 0
		buildBig(b, benchEntries, func(_ context.Context, ref blobstore.Ref, plain []byte) error {
			if !seen[ref] {
				fresh++
				freshBytes += len(plain)
			}
			return nil
		}, func(i int, e *Entry) []Entry {
			if i == (k*7919)%benchEntries {
				e.Size++
				return []Entry{*e, fileEntry(bigName(i)+"-new", i)}
			}
			return []Entry{*e}
		})
	}
	b.ReportMetric(float64(fresh), "newblobs")
	b.ReportMetric(float64(freshBytes), "newbytes")
}

// BenchmarkRead lists the million-file directory from blobs in memory,
// hashing each one as a loaded blob must be.
func BenchmarkRead(b *testing.B) {
	store := newMemStore()
	root := buildBig(b, benchEntries, store.emit, nil)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		c, err := NewReader(store.load, root).Entries(ctx, 0)
		count := 0
		for err == nil {
			if _, err = c.Next(ctx); err == nil {
				count++
			}
		}
		if count != benchEntries {
			b.Fatalf("read %d entries: %v", count, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEntries), "ns/entry")
}

// BenchmarkLookup looks up one name in the million-file directory.
func BenchmarkLookup(b *testing.B) {
	store := newMemStore()
	root := buildBig(b, benchEntries, store.emit, nil)
	r := NewReader(store.load, root)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := r.Lookup(ctx, bigName(i*7919%benchEntries)); err != nil {
			b.Fatal(err)
		}
	}
}
