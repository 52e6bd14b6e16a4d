package diskaccesstest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// replicated writes a blob to volume 1 and copies it to a new volume 2.
func (h *harness) replicated(t *testing.T, seed uint64) (blobstore.Ref, []byte) {
	t.Helper()
	h.addVolume(t, 2, true)
	ref := h.write(t, 1, RandomContent(seed, 2*frameSize+9))
	if err := h.c.Replicate(h.ctx, 1, 2, ref); err != nil {
		t.Fatalf("Replicate: %v", err)
	}
	good, err := os.ReadFile(h.storedPath(1, ref))
	if err != nil {
		t.Fatal(err)
	}
	return ref, good
}

// stored is a blob's stored bytes on a volume.
func (h *harness) stored(t *testing.T, volume int, ref blobstore.Ref) []byte {
	t.Helper()
	b, err := os.ReadFile(h.storedPath(volume, ref))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testRepairDamagedAndMissing(t *testing.T, h *harness) {
	ref, good := h.replicated(t, 40)
	h.damage(t, 2, ref, func(b []byte) []byte { b[headerSize+5] ^= 0x02; return b })
	if err := h.c.Repair(h.ctx, 1, 2, ref); err != nil {
		t.Fatalf("Repair of a damaged copy: %v", err)
	}
	if !bytes.Equal(h.stored(t, 2, ref), good) {
		t.Fatal("the repaired copy's bytes differ from the good copy's")
	}
	if _, err := h.c.Scrub(h.ctx, ref, 2); err != nil {
		t.Fatalf("Scrub after Repair: %v", err)
	}
	if err := os.Remove(h.storedPath(2, ref)); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Repair(h.ctx, 1, 2, ref); err != nil {
		t.Fatalf("Repair of a missing copy: %v", err)
	}
	if !bytes.Equal(h.stored(t, 2, ref), good) {
		t.Fatal("the restored copy's bytes differ from the good copy's")
	}
	if meta := h.meta(t, ref); len(meta.Volumes) != 2 {
		t.Fatalf("Volumes after Repair = %v, want [1 2]", meta.Volumes)
	}
	if err := h.c.Repair(h.ctx, 1, 2, ref); !errors.Is(err, diskaccess.ErrCopyIntact) {
		t.Fatalf("Repair of a good copy: %v, want ErrCopyIntact", err)
	}
}

func testRepairNeedsGoodSource(t *testing.T, h *harness) {
	ref, _ := h.replicated(t, 41)
	h.damage(t, 1, ref, func(b []byte) []byte { b[headerSize+frameSize+tagSize+3] ^= 0x04; return b })
	h.damage(t, 2, ref, func(b []byte) []byte { b[headerSize+3] ^= 0x04; return b })
	damaged := h.stored(t, 2, ref)
	err := h.c.Repair(h.ctx, 1, 2, ref)
	if ce := corruptError(t, "Repair from a damaged source", err); ce.Volume != 1 || ce.Frame != 1 {
		t.Fatalf("Repair blames frame %d of volume %d, want frame 1 of volume 1", ce.Frame, ce.Volume)
	}
	if !bytes.Equal(h.stored(t, 2, ref), damaged) {
		t.Fatal("a failed Repair changed the target's copy")
	}
	h.addVolume(t, 3, true)
	if err := h.c.Repair(h.ctx, 1, 3, ref); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Repair onto a volume the metadata does not list: %v, want fs.ErrNotExist", err)
	}
	if err := h.c.Repair(h.ctx, 3, 2, ref); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Repair from a volume without the blob: %v, want fs.ErrNotExist", err)
	}
	if h.blobCount(t, 3) != 0 {
		t.Fatal("Repair stored something on a volume it should not touch")
	}
}
