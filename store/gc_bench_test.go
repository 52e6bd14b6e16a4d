package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/store"
)

var gcBlobs = flag.Int("gc.blobs", 100_000, "blob records in BenchmarkFindGarbage's store (half used by files, half by nothing)")

// BenchmarkFindGarbage: a store of -gc.blobs blob records (made up: the
// search reads no content blob), half of them the content of files of a
// files/ tree of 1,000-file directories, snapshotted once (real tree
// blobs, sealed, on the volume), the other half used by nothing. It
// reports the time per blob and the heap the search adds at its peak:
// live (reachable), and allocated (see heapGrowth).
//
//	go test ./store -run XXX -bench FindGarbage -benchtime 1x -gc.blobs 1000000
func BenchmarkFindGarbage(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b)
	v, _ := s.Volume(ctx, store.DefaultVolume)
	if _, err := s.CreateCollection(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	c, _ := s.Collection(ctx, "bench")
	if err := makeBlobs(ctx, s, v.ID, c.KeyID, *gcBlobs); err != nil {
		b.Fatal(err)
	}
	if err := makeTree(ctx, s, *gcBlobs/2); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Snapshot(ctx, "bench", v.ID); err != nil {
		b.Fatal(err)
	}
	b.Logf("store of %d blob records made; snapshot of %d files in %s", *gcBlobs, *gcBlobs/2, time.Since(start).Round(time.Millisecond))
	// A first search fills Badger's block and index caches (48 MiB at
	// most, badgerOptions), which a running daemon has filled already:
	// the growth measured is then the search's own.
	first, _ := heapGrowth(func() {
		if _, err := s.FindGarbage(ctx, store.GCOptions{}); err != nil {
			b.Fatal(err)
		}
	})
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	b.Logf("live heap growth of a first search, with Badger's caches empty: %.1f MiB; the process's live heap after it: %.1f MiB",
		float64(first)/(1<<20), float64(sample[0].Value.Uint64())/(1<<20))
	b.ReportAllocs()
	b.ResetTimer()
	var peakLive, peakAlloc uint64
	var searching time.Duration
	for range b.N {
		var r *store.GarbageReport
		live, allocated := heapGrowth(func() {
			var err error
			if r, err = s.FindGarbage(ctx, store.GCOptions{}); err != nil {
				b.Fatal(err)
			}
		})
		peakLive, peakAlloc = max(peakLive, live), max(peakAlloc, allocated)
		searching += r.Elapsed
		if want := int64(*gcBlobs / 2); r.Garbage != want || r.Live.Files != want {
			b.Fatalf("FindGarbage = %+v, want %d garbage and %d used by files", r, want, want)
		}
	}
	// The search's own time, without heapGrowth's collections.
	b.ReportMetric(float64(searching.Nanoseconds())/float64(b.N)/float64(*gcBlobs), "ns/blob")
	b.ReportMetric(float64(peakLive)/(1<<20), "live-heap-MiB")
	b.ReportMetric(float64(peakAlloc)/(1<<20), "alloc-heap-MiB")
}

// makeBlobs records n made-up blobs on the volume, sealed (they say) with
// keyID: blob i is the SHA-256 of "gc bench <i>".
func makeBlobs(ctx context.Context, s *store.Store, volumeID int, keyID string, n int) error {
	old := time.Now().Add(-48 * time.Hour)
	const batch = 50_000
	for done := 0; done < n; done += batch {
		var metas []*diskaccess.BlobMeta
		for i := done; i < min(done+batch, n); i++ {
			metas = append(metas, &diskaccess.BlobMeta{Ref: benchRef(i), RealSize: 1024, SizeOnDisk: 1024 + 89,
				EncryptionKeyId: keyID, ExpectedCrc32: []byte{0, 0, 0, 0}, Created: old})
		}
		if err := s.Meta().WriteBlobsCreated(ctx, metas, volumeID); err != nil {
			return err
		}
	}
	return nil
}

func benchRef(i int) blobstore.Ref {
	return blobstore.RefOf(binary.BigEndian.AppendUint64([]byte("gc bench "), uint64(i)))
}

// makeTree restores files/bench as files files directories of 1,000
// files each, file k's content being blob 2k (the even blobs).
func makeTree(ctx context.Context, s *store.Store, files int) error {
	r := s.Meta().NewRestorer()
	defer r.Cancel()
	next := uint64(1)
	ino := func() uint64 { next++; return badger.TreeInoBase | next }
	now := time.Now()
	folder := &badger.Inode{Ino: ino(), Kind: badger.KindDir, Mode: 0o755, Mtime: now, Ctime: now}
	if err := r.Folder("bench", folder, nil); err != nil {
		return err
	}
	var dir *badger.Inode
	for k := range files {
		if k%1000 == 0 {
			dir = &badger.Inode{Ino: ino(), Kind: badger.KindDir, Mode: 0o755, Mtime: now, Ctime: now}
			if err := r.Add(folder.Ino, fmt.Sprintf("d%04d", k/1000), dir, nil); err != nil {
				return err
			}
		}
		f := &badger.Inode{Ino: ino(), Kind: badger.KindFile, Mode: 0o644, Size: 1024, Mtime: now, Ctime: now,
			Ref: benchRef(2 * k), StoredSize: 1024 + 89, Committed: true}
		if err := r.Add(dir.Ino, fmt.Sprintf("file-%07d", k), f, nil); err != nil {
			return err
		}
	}
	return r.Finish(ctx)
}

// heapGrowth runs fn and returns how far the live heap (what the last
// collection found reachable: runtime/metrics' /gc/heap/live:bytes) grew
// above what it was before, at its highest, sampled every 5 ms, and the
// same of the allocated heap (live and garbage not collected yet, which
// GOGC lets grow to about twice the live heap).
func heapGrowth(fn func()) (live, allocated uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	baseLive, baseAlloc := sample[0].Value.Uint64(), sample[1].Value.Uint64()
	peakLive, peakAlloc := baseLive, baseAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				metrics.Read(sample)
				peakLive = max(peakLive, sample[0].Value.Uint64())
				peakAlloc = max(peakAlloc, sample[1].Value.Uint64())
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	runtime.GC() // the live heap at the very end, as the last collection finds it
	metrics.Read(sample)
	peakLive = max(peakLive, sample[0].Value.Uint64())
	return peakLive - baseLive, peakAlloc - baseAlloc
}

var gcRemove = flag.Int("gc.remove", 20_000, "garbage blobs, each a file on a local volume, in BenchmarkCollectGarbage's store")

// BenchmarkCollectGarbage: a store of -gc.remove blob records used by
// nothing, each a 1,113-byte file on the default (local) volume; one
// collection condemns them all and removes them (an unlink and a
// directory fsync each). It reports the time per blob removed.
//
//	go test ./store -run XXX -bench CollectGarbage -benchtime 1x -gc.remove 100000
func BenchmarkCollectGarbage(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		s, _ := newStore(b)
		v, _ := s.Volume(ctx, store.DefaultVolume)
		c, _ := s.Collection(ctx, store.DefaultCollection)
		if err := makeBlobs(ctx, s, v.ID, c.KeyID, *gcRemove); err != nil {
			b.Fatal(err)
		}
		driver, _ := s.Controller().Driver(v.ID)
		content := make([]byte, 1024+89)
		for i := range *gcRemove {
			if err := driver.RawStore(blobstore.WithDeferredSync(ctx), benchRef(i), bytes.NewReader(content)); err != nil {
				b.Fatal(err)
			}
		}
		if err := driver.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r, err := s.CollectGarbage(ctx, store.GCOptions{})
		if err != nil || r.Garbage != int64(*gcRemove) || r.Freed[0].Blobs != int64(*gcRemove) {
			b.Fatalf("CollectGarbage = %+v, %v", r, err)
		}
		elapsed := time.Since(start)
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(*gcRemove), "ns/blob")
		b.Logf("%d blobs condemned and removed in %s", *gcRemove, elapsed.Round(time.Millisecond))
		s.Close()
	}
}
