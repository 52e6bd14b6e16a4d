package localfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/storagetest"
)

// TestConformanceWithNamedTempFiles runs the conformance tests as on a
// filesystem without O_TMPFILE: every write goes through a locked named
// temp file.
func TestConformanceWithNamedTempFiles(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) blobstore.Driver {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		s.noTmpfile.Store(true)
		return s
	})
}

// TestUnnamedTempFileLeavesNothing: a blob being staged has no name in its
// shard, and one discarded leaves nothing behind.
func TestUnnamedTempFileLeavesNothing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := blobstore.RefOf([]byte("staged"))
	staged, err := s.RawCreate(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := staged.Write([]byte("staged")); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Dir(s.path(ref))
	if entries, _ := os.ReadDir(shard); len(entries) != 0 {
		t.Fatalf("the shard holds %d entries while a blob is staged (O_TMPFILE: want none)", len(entries))
	}
	staged.Discard()
	if entries, _ := os.ReadDir(shard); len(entries) != 0 {
		t.Fatalf("the shard holds %d entries after a discard", len(entries))
	}
}
