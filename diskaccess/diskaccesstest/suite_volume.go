package diskaccesstest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/blobstore/memory"
	"github.com/stofuse/stofuse/diskaccess"
)

func testVolumeDescriptor(t *testing.T, h *harness) {
	store := h.addVolume(t, 2, false)
	if h.c.IsMounted(2) {
		t.Fatal("volume 2 mounted before Mount")
	}
	if err := h.c.Initialize(h.ctx, "another-uuid", store); !errors.Is(err, diskaccess.ErrVolumeAlreadyInitialized) {
		t.Fatalf("second Initialize: %v, want ErrVolumeAlreadyInitialized", err)
	}
	if err := h.c.Mountable(h.ctx, 2, "wrong-uuid", store); !errors.Is(err, diskaccess.ErrWrongVolume) {
		t.Fatalf("Mountable with a wrong UUID: %v, want ErrWrongVolume", err)
	}
	if err := h.c.Mount(h.ctx, 2, "wrong-uuid", store); !errors.Is(err, diskaccess.ErrWrongVolume) || h.c.IsMounted(2) {
		t.Fatalf("Mount with a wrong UUID: %v, want ErrWrongVolume and nothing mounted", err)
	}
	if err := h.c.Mountable(h.ctx, 2, h.uuids[2], store); err != nil || h.c.IsMounted(2) {
		t.Fatalf("Mountable: %v (and it must not mount)", err)
	}
	h.mount(t, 2)
	if !h.c.IsMounted(2) {
		t.Fatal("IsMounted(2) false after Mount")
	}
	if err := h.c.Mount(h.ctx, 2, h.uuids[2], store); !errors.Is(err, diskaccess.ErrAlreadyMounted) {
		t.Fatalf("second Mount: %v, want ErrAlreadyMounted", err)
	}

	blank, err := localfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.Mount(h.ctx, 3, h.uuids[2], blank); !errors.Is(err, diskaccess.ErrVolumeDescriptorNotFound) {
		t.Fatalf("Mount of a blank directory: %v, want ErrVolumeDescriptorNotFound", err)
	}
}

// testDescriptorIsNamedObject: Initialize writes the descriptor as the
// named object, byte for byte as docs/format.md gives it, and no blob.
func testDescriptorIsNamedObject(t *testing.T, h *harness) {
	store := h.addVolume(t, 2, false)
	if n := h.blobCount(t, 2); n != 0 {
		t.Fatalf("a new volume lists %d blobs, want none (the descriptor is a named object)", n)
	}
	rc, err := store.GetObject(h.ctx, diskaccess.VolumeDescriptorName)
	if err != nil {
		t.Fatalf("GetObject(%q): %v", diskaccess.VolumeDescriptorName, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	want := `{"format":"stofuse volume","version":1,"volume_uuid":"` + h.uuids[2] + `"}`
	if err != nil || string(got) != want {
		t.Fatalf("descriptor = %q, %v; want %q", got, err, want)
	}
}

// testLegacyDescriptor: a volume initialized before named objects holds
// its descriptor as a blob under the zero ref. It is accepted and refused
// exactly as a new one, and left as it is.
func testLegacyDescriptor(t *testing.T, h *harness) {
	old, err := localfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"format":"stofuse volume","version":1,"volume_uuid":"old-uuid"}`
	if err := old.RawStore(h.ctx, blobstore.Ref{}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Initialize(h.ctx, "another-uuid", old); !errors.Is(err, diskaccess.ErrVolumeAlreadyInitialized) {
		t.Fatalf("Initialize of an old volume: %v, want ErrVolumeAlreadyInitialized", err)
	}
	if err := h.c.Mountable(h.ctx, 4, "wrong-uuid", old); !errors.Is(err, diskaccess.ErrWrongVolume) {
		t.Fatalf("Mountable of an old volume with a wrong UUID: %v, want ErrWrongVolume", err)
	}
	if err := h.c.Mount(h.ctx, 4, "old-uuid", old); err != nil {
		t.Fatalf("Mount of an old volume: %v", err)
	}
	var named []string
	old.ListObjects(h.ctx, "", func(info blobstore.ObjectInfo) error {
		named = append(named, info.Name)
		return nil
	})
	if len(named) != 0 {
		t.Fatalf("Mount of an old volume wrote named objects %v; it must leave the volume as it was", named)
	}
	if !diskaccess.IsVolumeDescriptor(blobstore.Ref{}) {
		t.Fatal("IsVolumeDescriptor(zero ref) is false: scrub of an old volume would report its descriptor")
	}
}

func testMountSweeps(t *testing.T, h *harness) {
	store := h.addVolume(t, 2, false)
	content := RandomContent(20, 100)
	shard := filepath.Join(store.Dir(), "abc")
	if err := os.MkdirAll(shard, 0o700); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(shard, ".tmp-crashed")
	if err := os.WriteFile(leftover, content, 0o600); err != nil {
		t.Fatal(err)
	}
	h.mount(t, 2)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("Mount left an interrupted write's temp file behind (%v)", err)
	}
}

func testBestVolumeId(t *testing.T, h *harness) {
	cheap, dear := memory.New(5), memory.New(500)
	for id, driver := range map[int]*memory.Store{7: dear, 8: cheap} {
		if err := h.c.Initialize(h.ctx, "uuid-mem", driver); err != nil {
			t.Fatal(err)
		}
		if err := h.c.Mount(h.ctx, id, "uuid-mem", driver); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ids  []int
		want int
	}{{[]int{7, 8}, 8}, {[]int{7, 1}, 1}, {[]int{7, 99}, 7}, {[]int{1, 8}, 8}} {
		if got, err := h.c.BestVolumeId(tc.ids); err != nil || got != tc.want {
			t.Errorf("BestVolumeId(%v) = %d, %v; want %d", tc.ids, got, err, tc.want)
		}
	}
	if _, err := h.c.BestVolumeId([]int{98, 99}); !errors.Is(err, diskaccess.ErrNotMounted) {
		t.Errorf("BestVolumeId of unmounted volumes: %v, want ErrNotMounted", err)
	}
}
