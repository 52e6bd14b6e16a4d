package diskaccess_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/diskaccess/diskaccesstest"
)

// patternReader yields size bytes: a 1 MiB random block repeated, each
// repetition with its number stamped in, so that no two frames are equal
// and lz4 finds nothing to compress within a frame.
type patternReader struct {
	block []byte
	size  int64
	pos   int64
}

func newPatternReader(size int64) *patternReader {
	return &patternReader{block: diskaccesstest.RandomContent(99, 1<<20), size: size}
}

func (p *patternReader) Read(buf []byte) (int, error) {
	if p.pos >= p.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(buf) && p.pos < p.size {
		i := int(p.pos % int64(len(p.block)))
		c := copy(buf[n:min(len(buf), n+int(p.size-p.pos))], p.block[i:])
		if i == 0 && c >= 8 {
			rep := p.pos >> 20
			for j := range 8 {
				buf[n+j] ^= byte(rep >> (8 * j))
			}
		}
		n += c
		p.pos += int64(c)
	}
	return n, nil
}

// heapPeak samples the live heap until stopped and reports the peak.
type heapPeak struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func watchHeap() *heapPeak {
	runtime.GC()
	h := &heapPeak{stop: make(chan struct{})}
	h.wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > h.peak.Load() {
				h.peak.Store(ms.HeapAlloc)
			}
			select {
			case <-h.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return h
}

func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load()
}

// TestBoundedMemory writes and fetches a 2 GiB blob through a real localfs
// volume and checks that the heap never grows past 64 MiB.
func TestBoundedMemory(t *testing.T) {
	const size = 2 << 30
	const heapLimit = 64 << 20
	ctx := context.Background()
	hasher := sha256.New()
	io.Copy(hasher, newPatternReader(size))
	ref := blobstore.Ref(hasher.Sum(nil))

	key := bytes.Repeat([]byte{3}, 32)
	c := diskaccess.New(diskaccesstest.NewMemoryStore("c", "k", key))
	volume, err := localfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(ctx, "u", volume); err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(ctx, 1, "u", volume); err != nil {
		t.Fatal(err)
	}

	watch := watchHeap()
	err = c.WriteBlob(ctx, 1, "c", ref, newPatternReader(size), true)
	writePeak := watch.Stop()
	if err != nil {
		t.Fatal(err)
	}

	watch = watchHeap()
	rc, err := c.Fetch(ctx, ref, diskaccesstest.KeyRing{"k": key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	hasher.Reset()
	n, err := io.Copy(hasher, rc)
	rc.Close()
	fetchPeak := watch.Stop()
	if err != nil || n != size || blobstore.Ref(hasher.Sum(nil)) != ref {
		t.Fatalf("Fetch of the 2 GiB blob: %d bytes, %v, or wrong content", n, err)
	}
	t.Logf("peak heap: WriteBlob %.1f MiB, Fetch %.1f MiB", float64(writePeak)/(1<<20), float64(fetchPeak)/(1<<20))
	if writePeak > heapLimit || fetchPeak > heapLimit {
		t.Fatalf("peak heap WriteBlob %d, Fetch %d bytes; limit %d", writePeak, fetchPeak, heapLimit)
	}
}
