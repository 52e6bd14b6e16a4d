package diskaccesstest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

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
