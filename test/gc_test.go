package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// gcReport is what stofuse --json gc --dry-run prints.
type gcReport struct {
	Blobs int64 `json:"blobs"`
	Live  struct {
		Files, Snapshots, Explicit, Held, Young int64
	} `json:"live"`
	Garbage int64 `json:"garbage"`
	Kept    int64 `json:"kept"`
	Volumes []struct {
		Volume string `json:"volume"`
		Blobs  int64  `json:"blobs"`
		Bytes  int64  `json:"bytes"`
	} `json:"volumes"`
	Freed []struct {
		Volume string `json:"volume"`
		Blobs  int64  `json:"blobs"`
		Bytes  int64  `json:"bytes"`
	} `json:"freed"`
	Snapshots int `json:"snapshots"`
}

func gcDryRun(t *testing.T, s *store, grace string) gcReport {
	t.Helper()
	var r gcReport
	out := s.mustRun("--json", "gc", "--dry-run", "--grace", grace)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("gc --dry-run --json: %v: %q", err, out)
	}
	return r
}

// storedBytes is the stored size stofuse stat gives a blob.
func storedBytes(t *testing.T, s *store, ref string) int64 {
	t.Helper()
	var st struct {
		Stored int64 `json:"stored_size"`
	}
	if err := json.Unmarshal([]byte(s.mustRun("--json", "stat", ref)), &st); err != nil {
		t.Fatal(err)
	}
	return st.Stored
}

// TestGCDryRun: gc --dry-run counts as garbage exactly the blobs nothing
// keeps (a released blob; once its snapshot is forgotten, the files
// deleted since and the trees and record only it used), keeps the young
// ones with the default grace, removes nothing, and says the same through
// a mount.
func TestGCDryRun(t *testing.T) {
	s := newStore(t)
	src := t.TempDir()
	var dropped []string
	for d, dir := range []string{"keep", "drop", "drop/sub"} {
		if err := os.MkdirAll(filepath.Join(src, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			ref := writeRandomFile(t, filepath.Join(src, dir, fmt.Sprint("f", i)), uint64(d*10+i), 20_000)
			if strings.HasPrefix(dir, "drop") {
				dropped = append(dropped, ref)
			}
		}
	}
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	sh(t, "cp -a "+src+"/. "+files+"/")
	s.mustRun("snapshot")
	sh(t, "rm -r "+files+"/drop")
	s.mustRun("snapshot")
	released := writeRandomFile(t, filepath.Join(src, "released"), 99, 5000)
	sh(t, "cp "+src+"/released "+m.ref(released))
	s.mustRun("release", released)

	// Through the mount's daemon (nothing open): what it says offline.
	throughMount := s.mustRun("gc", "--dry-run", "--grace", "0")
	m.unmount()

	// Young, with the default grace: nothing is garbage.
	out := s.mustRun("gc", "--dry-run")
	if !strings.HasSuffix(out, " younger than 1h0m0s), 0 garbage; nothing was removed\n") || strings.Contains(out, "volume default") {
		t.Errorf("gc --dry-run with the default grace said:\n%s", out)
	}
	r := gcDryRun(t, s, "0s")
	if r.Garbage != 1 || len(r.Volumes) != 1 || r.Volumes[0].Blobs != 1 || r.Volumes[0].Bytes != storedBytes(t, s, released) || r.Snapshots != 2 {
		t.Errorf("gc --dry-run --grace 0: %+v, want the released blob alone", r)
	}
	text := s.mustRun("gc", "--dry-run", "--grace", "0")
	// 5000 random bytes and the format's 89.
	if want := "volume default: 1 blobs, 5.0 KiB would be freed\n" +
		"gc --dry-run: 19 blobs, 18 live (3 used by files, 15 by 2 retained snapshots, 0 explicit stores, 0 held by the mount, 0 younger than 0s), 1 garbage; nothing was removed\n"; text != want {
		t.Errorf("gc --dry-run --grace 0 said:\n%s\nwant:\n%s", text, want)
	}
	if throughMount != text {
		t.Errorf("gc --dry-run --grace 0 through the mount said:\n%s\nwant what it says offline:\n%s", throughMount, text)
	}

	// With the first snapshot forgotten: the 6 dropped files, the trees of
	// drop, drop/sub and the collection's folder as it was, and the record.
	s.mustRun("forget", "--keep-last", "1")
	after := gcDryRun(t, s, "0")
	if after.Garbage != 1+6+3+1 || after.Snapshots != 1 || after.Live.Snapshots != r.Live.Snapshots-6-3-1 {
		t.Errorf("after forget: %+v, want 11 garbage (before: %+v)", after, r)
	}
	var droppedBytes int64
	for _, ref := range dropped {
		droppedBytes += storedBytes(t, s, ref)
	}
	if got := after.Volumes[0].Bytes - r.Volumes[0].Bytes; got <= droppedBytes {
		t.Errorf("forgetting freed %d bytes, want more than the dropped files' %d", got, droppedBytes)
	}
	// Nothing was removed: every dropped blob is still on the volume.
	for _, ref := range append(dropped, released) {
		if _, err := os.Stat(filepath.Join(s.dir, "volumes", "default", ref[:3], ref)); err != nil {
			t.Errorf("gc --dry-run removed %s: %v", ref, err)
		}
	}
	if got := strconv.FormatInt(after.Blobs, 10); got != strconv.FormatInt(r.Blobs, 10) {
		t.Errorf("blob records before and after: %d, %d", r.Blobs, after.Blobs)
	}
}
