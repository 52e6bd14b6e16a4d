package diskaccesstest

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

func testRoundTripSizes(t *testing.T, h *harness) {
	sizes := []int{0, 1, 100, frameSize - 1, frameSize, frameSize + 1, 3*frameSize + 5}
	for i, size := range sizes {
		for _, content := range [][]byte{RandomContent(uint64(i), size), TextContent(uint64(i), size)} {
			ref := h.write(t, 1, content)
			got, err := h.fetch(t, 1, ref)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("Fetch of a %d-byte blob: %d bytes, %v; want the content back", size, len(got), err)
			}
		}
	}
}

func testMetadata(t *testing.T, h *harness) {
	text := TextContent(1, 5*frameSize)
	random := RandomContent(2, 5*frameSize)
	for _, tc := range []struct {
		content    []byte
		compressed bool
	}{{text, true}, {random, false}} {
		ref := h.write(t, 1, tc.content)
		meta := h.meta(t, ref)
		stored, err := os.ReadFile(h.storedPath(1, ref))
		if err != nil {
			t.Fatal(err)
		}
		crc := crc32.Checksum(stored, crc32.MakeTable(crc32.Castagnoli))
		switch {
		case meta.Ref != ref, meta.RealSize != int64(len(tc.content)):
			t.Fatalf("meta = %+v, want ref %s and size %d", meta, ref, len(tc.content))
		case meta.SizeOnDisk != int64(len(stored)):
			t.Fatalf("SizeOnDisk = %d, the volume holds %d bytes", meta.SizeOnDisk, len(stored))
		case !bytes.Equal(meta.ExpectedCrc32, []byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)}):
			t.Fatalf("ExpectedCrc32 = %x, the stored bytes have %08x", meta.ExpectedCrc32, crc)
		case meta.IsCompressed != tc.compressed:
			t.Fatalf("IsCompressed = %v, want %v", meta.IsCompressed, tc.compressed)
		case len(meta.Volumes) != 1 || meta.Volumes[0] != 1:
			t.Fatalf("Volumes = %v, want [1]", meta.Volumes)
		case !meta.Created.Equal(clock):
			t.Fatalf("Created = %v, want %v", meta.Created, clock)
		case meta.EncryptionKey != nil:
			t.Fatal("QueryBlobMetadata without keys returned a key")
		}
		if tc.compressed && meta.SizeOnDisk >= meta.RealSize/2 {
			t.Fatalf("text stored in %d bytes for %d: lz4 did not work", meta.SizeOnDisk, meta.RealSize)
		}
		if withKeys, _ := h.Store.QueryBlobMetadata(h.ctx, ref, h.Keys); withKeys == nil || withKeys.EncryptionKey == nil {
			t.Fatal("QueryBlobMetadata with the keys did not give the data key")
		}
	}
}

func testRandomAccess(t *testing.T, h *harness) {
	content := TextContent(3, 4*frameSize+123)
	ref := h.write(t, 1, content)
	blob, err := h.c.OpenBlob(h.ctx, ref, h.Keys, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	if blob.Size() != int64(len(content)) {
		t.Fatalf("Size() = %d, want %d", blob.Size(), len(content))
	}
	for _, tc := range []struct{ off, n int }{
		{0, 10}, {frameSize - 5, 10}, {2*frameSize + 1, frameSize + 7}, {len(content) - 3, 3}, {0, len(content)},
	} {
		buf := make([]byte, tc.n)
		n, err := blob.ReadAt(buf, int64(tc.off))
		if n != tc.n || (err != nil && err != io.EOF) || !bytes.Equal(buf, content[tc.off:tc.off+tc.n]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v or wrong bytes", tc.n, tc.off, n, err)
		}
	}
	if n, err := blob.ReadAt(make([]byte, 10), int64(len(content))-4); n != 4 || err != io.EOF {
		t.Fatalf("ReadAt across the end = %d, %v; want 4, io.EOF", n, err)
	}
}

func testMismatchStoresNothing(t *testing.T, h *harness) {
	for _, size := range []int{0, 10, 3 * frameSize} {
		content := RandomContent(4, size)
		wrongRef := blobstore.RefOf([]byte("something else"))
		err := h.c.WriteBlob(h.ctx, 1, h.CollId, wrongRef, bytes.NewReader(content), true)
		if !errors.Is(err, diskaccess.ErrRefMismatch) {
			t.Fatalf("WriteBlob of %d bytes under a wrong ref: err = %v, want ErrRefMismatch", size, err)
		}
		if exists, _ := h.Store.QueryBlobExists(h.ctx, wrongRef); exists {
			t.Fatal("a mismatching blob was recorded")
		}
		if n := h.blobCount(t, 1); n != 0 {
			t.Fatalf("a mismatching blob left %d stored blobs", n)
		}
	}
}

// countingDriver counts RawStore calls on a driver.
type countingDriver struct {
	blobstore.Driver
	stores atomic.Int32
}

func (d *countingDriver) RawStore(ctx context.Context, ref blobstore.Ref, r io.Reader) error {
	d.stores.Add(1)
	return d.Driver.RawStore(ctx, ref, r)
}

func (h *harness) remountCounting(t *testing.T, id int) *countingDriver {
	t.Helper()
	if err := h.c.Unmount(id); err != nil {
		t.Fatal(err)
	}
	counting := &countingDriver{Driver: h.volumes[id]}
	if err := h.c.Mount(h.ctx, id, h.uuids[id], counting); err != nil {
		t.Fatal(err)
	}
	return counting
}

func testWriteTwiceStoresOnce(t *testing.T, h *harness) {
	counting := h.remountCounting(t, 1)
	content := TextContent(5, 2*frameSize)
	ref := h.write(t, 1, content)
	before, _ := os.ReadFile(h.storedPath(1, ref))
	h.write(t, 1, content)
	after, _ := os.ReadFile(h.storedPath(1, ref))
	if got := counting.stores.Load(); got != 1 {
		t.Fatalf("two writes of one blob made %d RawStore calls, want 1", got)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the second write changed the stored bytes")
	}
	// A known blob with the wrong content is still refused.
	err := h.c.WriteBlob(h.ctx, 1, h.CollId, ref, strings.NewReader("not it"), true)
	if !errors.Is(err, diskaccess.ErrRefMismatch) {
		t.Fatalf("WriteBlob of wrong content under a known ref: %v, want ErrRefMismatch", err)
	}
}

func testConcurrentWritersStoreOnce(t *testing.T, h *harness) {
	counting := h.remountCounting(t, 1)
	content := RandomContent(6, 3*frameSize)
	ref := blobstore.RefOf(content)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			errs <- h.c.WriteBlob(h.ctx, 1, h.CollId, ref, bytes.NewReader(content), true)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent WriteBlob: %v", err)
		}
	}
	if got := counting.stores.Load(); got != 1 {
		t.Fatalf("8 concurrent writers of one ref made %d RawStore calls, want 1", got)
	}
	if got, err := h.fetch(t, 1, ref); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Fetch after concurrent writes: %v", err)
	}
}

// orderCheckingStore fails WriteBlobCreated unless the blob is already
// stored, in full, on the volume.
type orderCheckingStore struct {
	diskaccess.MetadataStore
	driver blobstore.Driver
	t      *testing.T
}

func (s *orderCheckingStore) WriteBlobCreated(ctx context.Context, meta *diskaccess.BlobMeta, volumeId int) error {
	info, err := s.driver.Stat(ctx, meta.Ref)
	if err != nil || info.Size != meta.SizeOnDisk {
		s.t.Errorf("WriteBlobCreated called before the blob was stored: Stat = %d, %v", info.Size, err)
	}
	return s.MetadataStore.WriteBlobCreated(ctx, meta, volumeId)
}

func testDurableBeforeRecorded(t *testing.T, h *harness) {
	checking := &orderCheckingStore{MetadataStore: h.Store, driver: h.volumes[1], t: t}
	c := diskaccess.New(checking, diskaccess.WithFrameShift(frameShift))
	if err := c.Mount(h.ctx, 1, h.uuids[1], h.volumes[1]); err != nil {
		t.Fatal(err)
	}
	content := RandomContent(7, 2*frameSize+1)
	if err := c.WriteBlob(h.ctx, 1, h.CollId, blobstore.RefOf(content), bytes.NewReader(content), true); err != nil {
		t.Fatal(err)
	}
}

func testUnknownCollection(t *testing.T, h *harness) {
	content := []byte("orphan")
	err := h.c.WriteBlob(h.ctx, 1, "no-such-collection", blobstore.RefOf(content), bytes.NewReader(content), true)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteBlob to an unknown collection: %v, want fs.ErrNotExist", err)
	}
	if n := h.blobCount(t, 1); n != 0 {
		t.Fatalf("stored %d blobs for an unknown collection", n)
	}
}

// cancellingReader cancels its context after the first read.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

func testCancelledWrite(t *testing.T, h *harness) {
	content := RandomContent(8, 4*frameSize)
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	r := &cancellingReader{r: bytes.NewReader(content), cancel: cancel}
	err := h.c.WriteBlob(ctx, 1, h.CollId, blobstore.RefOf(content), r, true)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteBlob cancelled half-way: %v, want context.Canceled", err)
	}
	if exists, _ := h.Store.QueryBlobExists(h.ctx, blobstore.RefOf(content)); exists || h.blobCount(t, 1) != 0 {
		t.Fatal("a cancelled write was stored or recorded")
	}
}

func testFetchErrors(t *testing.T, h *harness) {
	content := TextContent(9, frameSize+10)
	ref := h.write(t, 1, content)
	h.addVolume(t, 2, true)
	for _, tc := range []struct {
		name   string
		ref    blobstore.Ref
		keys   diskaccess.KeyRing
		volume int
		want   error
	}{
		{"unknown blob", blobstore.RefOf([]byte("unknown")), h.Keys, 1, fs.ErrNotExist},
		{"blob on another volume", ref, h.Keys, 2, fs.ErrNotExist},
		{"volume not mounted", ref, h.Keys, 9, fs.ErrNotExist},
		{"no keys", ref, nil, 1, diskaccess.ErrKeyNotAvailable},
		{"wrong key", ref, wrongKeyRing{}, 1, diskaccess.ErrCorrupt},
	} {
		got, err := h.fetchWith(t, tc.keys, tc.volume, tc.ref)
		if !errors.Is(err, tc.want) || len(got) != 0 {
			t.Errorf("%s: Fetch = %d bytes, %v; want no bytes and %v", tc.name, len(got), err, tc.want)
		}
	}
}

// wrongKeyRing answers every key id with the same wrong key.
type wrongKeyRing struct{}

func (wrongKeyRing) DataKey(string) ([]byte, error) { return bytes.Repeat([]byte{0x42}, 32), nil }

func testWriteKnownBlobToSecondVolume(t *testing.T, h *harness) {
	h.addVolume(t, 2, true)
	content := TextContent(10, 2*frameSize)
	ref := h.write(t, 1, content)
	h.write(t, 2, content)
	first, _ := os.ReadFile(h.storedPath(1, ref))
	second, _ := os.ReadFile(h.storedPath(2, ref))
	if !bytes.Equal(first, second) {
		t.Fatal("a known blob written to a second volume was sealed again instead of copied")
	}
	if meta := h.meta(t, ref); len(meta.Volumes) != 2 {
		t.Fatalf("Volumes = %v, want [1 2]", meta.Volumes)
	}
}

func testFrameCache(t *testing.T, h *harness) {
	cache := diskaccess.NewFrameCache(4 * frameSize)
	c := diskaccess.New(h.Store, diskaccess.WithFrameShift(frameShift), diskaccess.WithFrameCache(cache))
	if err := c.Mount(h.ctx, 1, h.uuids[1], h.volumes[1]); err != nil {
		t.Fatal(err)
	}
	content := RandomContent(40, 3*frameSize)
	ref := h.write(t, 1, content)
	blob, err := c.OpenBlob(h.ctx, ref, h.Keys, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	// Reads of half a frame each, across frame boundaries: every frame is
	// opened once.
	half := frameSize / 2
	for off := 0; off < len(content); off += half {
		buf := make([]byte, half)
		if _, err := blob.ReadAt(buf, int64(off)); err != nil || !bytes.Equal(buf, content[off:off+half]) {
			t.Fatalf("ReadAt at %d: %v", off, err)
		}
	}
	if stats := cache.Stats(); stats.Misses != 3 || stats.Hits != 3 {
		t.Fatalf("cache stats %+v, want 3 misses (one per frame) and 3 hits", stats)
	}
}

func testStreamFromOffset(t *testing.T, h *harness) {
	content := TextContent(41, 3*frameSize+77)
	ref := h.write(t, 1, content)
	for _, off := range []int{0, 1, frameSize - 1, frameSize, 2*frameSize + 5, len(content) - 1, len(content)} {
		blob, err := h.c.OpenBlob(h.ctx, ref, h.Keys, 1)
		if err != nil {
			t.Fatal(err)
		}
		stream := blob.Stream(int64(off))
		got, err := io.ReadAll(stream)
		stream.Close()
		if err != nil || !bytes.Equal(got, content[off:]) {
			t.Fatalf("Stream(%d) = %d bytes, %v; want the last %d", off, len(got), err, len(content)-off)
		}
	}
}
