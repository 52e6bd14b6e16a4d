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
