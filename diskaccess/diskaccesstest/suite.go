package diskaccesstest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/diskaccess"
)

// Env is what the Controller suite needs from a MetadataStore under test:
// the store, with a collection CollId whose new blobs Keys can open.
type Env struct {
	Store  diskaccess.MetadataStore
	Keys   diskaccess.KeyRing
	CollId string
}

// RunControllerTests runs the Controller suite with fresh stores from
// newEnv. Blobs go to real localfs volumes in temporary directories.
func RunControllerTests(t *testing.T, newEnv func(t *testing.T) Env) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"RoundTripSizes", testRoundTripSizes},
		{"Metadata", testMetadata},
		{"RandomAccess", testRandomAccess},
		{"FrameCache", testFrameCache},
		{"StreamFromOffset", testStreamFromOffset},
		{"MismatchStoresNothing", testMismatchStoresNothing},
		{"WriteTwiceStoresOnce", testWriteTwiceStoresOnce},
		{"ConcurrentWritersStoreOnce", testConcurrentWritersStoreOnce},
		{"DurableBeforeRecorded", testDurableBeforeRecorded},
		{"CommitWith", testCommitWith},
		{"CommitWithFailure", testCommitWithFailure},
		{"CommitWithCopy", testCommitWithCopy},
		{"UnknownCollection", testUnknownCollection},
		{"CancelledWrite", testCancelledWrite},
		{"FetchErrors", testFetchErrors},
		{"VolumeDescriptor", testVolumeDescriptor},
		{"DescriptorIsNamedObject", testDescriptorIsNamedObject},
		{"LegacyDescriptor", testLegacyDescriptor},
		{"MountSweeps", testMountSweeps},
		{"BestVolumeId", testBestVolumeId},
		{"ScrubClean", testScrubClean},
		{"ScrubNamesDamagedFrame", testScrubNamesDamagedFrame},
		{"ScrubRegions", testScrubRegions},
		{"ScrubMissing", testScrubMissing},
		{"ScrubNamesSwappedBlob", testScrubNamesSwappedBlob},
		{"Replicate", testReplicate},
		{"ReplicateRefusesDamagedSource", testReplicateRefusesDamagedSource},
		{"ReplicateRefusesAbsentSource", testReplicateRefusesAbsentSource},
		{"RepairDamagedAndMissing", testRepairDamagedAndMissing},
		{"RepairNeedsGoodSource", testRepairNeedsGoodSource},
		{"WriteKnownBlobToSecondVolume", testWriteKnownBlobToSecondVolume},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t, newEnv(t)))
		})
	}
}

// The suite uses 64 KiB frames so that multi-frame blobs stay small.
const (
	frameShift = 16
	frameSize  = 1 << frameShift
)

var clock = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type harness struct {
	Env
	ctx     context.Context
	c       *diskaccess.Controller
	volumes map[int]*localfs.Store
	uuids   map[int]string
}

func newHarness(t *testing.T, env Env) *harness {
	h := &harness{
		Env:     env,
		ctx:     context.Background(),
		c:       diskaccess.New(env.Store, diskaccess.WithFrameShift(frameShift), diskaccess.WithClock(func() time.Time { return clock })),
		volumes: map[int]*localfs.Store{},
		uuids:   map[int]string{},
	}
	h.addVolume(t, 1, true)
	return h
}

// addVolume initializes a localfs volume and mounts it if asked.
func (h *harness) addVolume(t *testing.T, id int, mount bool) *localfs.Store {
	t.Helper()
	store, err := localfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.volumes[id], h.uuids[id] = store, uuid.NewString()
	if err := h.c.Initialize(h.ctx, h.uuids[id], store); err != nil {
		t.Fatalf("Initialize volume %d: %v", id, err)
	}
	if mount {
		h.mount(t, id)
	}
	return store
}

func (h *harness) mount(t *testing.T, id int) {
	t.Helper()
	if err := h.c.Mount(h.ctx, id, h.uuids[id], h.volumes[id]); err != nil {
		t.Fatalf("Mount volume %d: %v", id, err)
	}
}

func (h *harness) write(t *testing.T, volume int, content []byte) blobstore.Ref {
	t.Helper()
	ref := blobstore.RefOf(content)
	if err := h.c.WriteBlob(h.ctx, volume, h.CollId, ref, bytes.NewReader(content), true); err != nil {
		t.Fatalf("WriteBlob(%d bytes): %v", len(content), err)
	}
	return ref
}

func (h *harness) fetch(t *testing.T, volume int, ref blobstore.Ref) ([]byte, error) {
	t.Helper()
	return h.fetchWith(t, h.Keys, volume, ref)
}

func (h *harness) fetchWith(t *testing.T, keys diskaccess.KeyRing, volume int, ref blobstore.Ref) ([]byte, error) {
	t.Helper()
	rc, err := h.c.Fetch(h.ctx, ref, keys, volume)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (h *harness) meta(t *testing.T, ref blobstore.Ref) *diskaccess.BlobMeta {
	t.Helper()
	meta, err := h.Store.QueryBlobMetadata(h.ctx, ref, nil)
	if err != nil {
		t.Fatalf("QueryBlobMetadata(%s): %v", ref, err)
	}
	return meta
}

// storedPath is where localfs keeps a blob; tests damage it there.
func (h *harness) storedPath(volume int, ref blobstore.Ref) string {
	return filepath.Join(h.volumes[volume].Dir(), ref.String()[:3], ref.String())
}

func (h *harness) damage(t *testing.T, volume int, ref blobstore.Ref, fn func([]byte) []byte) {
	t.Helper()
	path := h.storedPath(volume, ref)
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(stored), 0o600); err != nil {
		t.Fatal(err)
	}
}

// blobCount counts the blobs a volume holds (its descriptor is a named
// object, not one of them).
func (h *harness) blobCount(t *testing.T, volume int) int {
	t.Helper()
	n := 0
	err := h.volumes[volume].List(h.ctx, func(blobstore.BlobInfo) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// RandomContent returns n incompressible bytes from seed.
func RandomContent(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0xb10b))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// TextContent returns n bytes of compressible, text-like content.
func TextContent(seed uint64, n int) []byte {
	words := []string{"blob ", "frame ", "volume ", "scrub ", "stofuse ", "replica ", "key ", "\n"}
	rng := rand.New(rand.NewPCG(seed, 0x7e47))
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.WriteString(words[rng.IntN(len(words))])
	}
	return buf.Bytes()[:n]
}
