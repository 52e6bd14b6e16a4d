package fusefs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStatAfterCloseIsTheStore: the kernel keeps a file's attributes for
// an hour (treeTimeout), so what the daemon changes at close must reach
// it: after each close, stat shows the size and mtime the metadata store
// holds, and the content reads as stored. (After a close that failed, the
// session keeps answering with what was written until the kernel's
// release, which comes after close(2) returns, reaches the daemon.)
func TestStatAfterCloseIsTheStore(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c, err := r.meta.Collection(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.dir, "files", "c", "f")
	check := func(when string, want []byte) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		record, err := r.meta.Lookup(ctx, c.FolderIno, filepath.Base(path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != record.Size || !st.ModTime().Equal(record.Mtime) {
			t.Errorf("%s: stat says size %d, mtime %s; the store holds %d, %s",
				when, st.Size(), st.ModTime().Format(time.RFC3339Nano), record.Size, record.Mtime.Format(time.RFC3339Nano))
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, want) || int64(len(got)) != record.Size {
			t.Errorf("%s: reads %d bytes, want %d (the store holds %d)", when, len(got), len(want), record.Size)
		}
	}
	v1 := bytes.Repeat([]byte("first "), 1000)
	for round := range 3 {
		if err := os.WriteFile(path, v1[:len(v1)-round], 0o644); err != nil {
			t.Fatal(err)
		}
		check("after a stored close", v1[:len(v1)-round])
	}
	// Closes after which nothing was written since the kernel last had
	// the attributes: only the daemon can tell it that they changed.
	f, err := os.Create(path + "-new") // created: size 0, an mtime
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a commit at close has a later mtime
	f.Close()
	path += "-new"
	check("after a close with nothing written", []byte{})
	if err := os.Truncate(path, 5); err != nil {
		t.Fatal(err)
	}
	check("after a truncate by path", make([]byte, 5))
}
