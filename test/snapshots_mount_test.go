package test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestSnapshotsDirectory: snapshots/default/<name>/ shows the files/ tree
// as each snapshot holds it. A slice of Go's source is copied in and
// snapshotted, a file changed and another deleted, and snapshotted again:
// both snapshots are listed while mounted, in order; the first one's view
// is the source exactly (diff -r, tar's listing of modes, owners, sizes
// and times); the deleted file comes back with cp; every write under
// snapshots/ fails with EROFS; a second rsync -a from a view transfers
// nothing; a view's inode numbers are not files/'s and stay the same
// after a remount; a damaged blob reads as EIO.
func TestSnapshotsDirectory(t *testing.T) {
	src := filepath.Join(goSource(t), "encoding")
	s := newStore(t)
	m := s.mount()
	tree := filepath.Join(m.dir, "files", "default", "encoding")
	sh(t, "cp -a "+src+" "+tree)
	first := snapshotName(t, s)
	snapshots := filepath.Join(m.dir, "snapshots", "default")
	if got := listNames(t, snapshots); !slices.Equal(got, []string{first}) {
		t.Fatalf("snapshots/default/ after the first snapshot: %q, want %s", got, first)
	}

	sh(t, "echo changed >> "+tree+"/json/encode.go && rm "+tree+"/csv/reader.go")
	second := snapshotName(t, s)
	if got := listNames(t, snapshots); !slices.Equal(got, []string{first, second}) {
		t.Fatalf("snapshots/default/ after the second snapshot: %q, want %s %s (oldest first)", got, first, second)
	}
	if got := listNames(t, filepath.Join(m.dir, "snapshots")); !slices.Equal(got, []string{"default"}) {
		t.Errorf("snapshots/: %q, want default", got)
	}
	view := filepath.Join(snapshots, first, "encoding")
	sh(t, "diff -r --no-dereference "+src+" "+view)
	if got, want := tarListing(t, view), tarListing(t, src); !slices.Equal(got, want) {
		t.Errorf("tar sees the first snapshot's view differently from the source (%d lines, want %d)", len(got), len(want))
	}
	later := filepath.Join(snapshots, second, "encoding")
	if _, err := os.Stat(filepath.Join(later, "csv", "reader.go")); !os.IsNotExist(err) {
		t.Errorf("the second snapshot holds the deleted file: %v", err)
	}
	shFails(t, "cmp -s "+src+"/json/encode.go "+later+"/json/encode.go")

	restored := filepath.Join(t.TempDir(), "reader.go")
	sh(t, "cp "+filepath.Join(view, "csv", "reader.go")+" "+restored+" && cmp "+restored+" "+src+"/csv/reader.go")

	checkReadOnly(t, filepath.Join(snapshots, first))

	local := filepath.Join(t.TempDir(), "copy")
	rsyncTransferred(t, view, local)
	if n := rsyncTransferred(t, view, local); n != "0" {
		t.Errorf("a second rsync -a from a snapshot view transferred %s files, want 0", n)
	}

	viewIno, liveIno := inode(t, filepath.Join(view, "json", "decode.go")), inode(t, filepath.Join(tree, "json", "decode.go"))
	if viewIno == liveIno || viewIno>>62 != 3 {
		t.Errorf("inode of a file in a view %#x, in files/ %#x: want the view's in its own space (top bits 11)", viewIno, liveIno)
	}
	m.unmount()
	damageBlob(t, s, filepath.Join(src, "json", "encode.go"))
	m = s.mount()
	view = filepath.Join(m.dir, "snapshots", "default", first, "encoding")
	if again := inode(t, filepath.Join(view, "json", "decode.go")); again != viewIno {
		t.Errorf("after a remount the file's inode is %#x, was %#x", again, viewIno)
	}
	if out := shFails(t, "cat "+view+"/json/encode.go >/dev/null"); !strings.Contains(out, "Input/output error") {
		t.Errorf("reading a snapshot's file whose blob is damaged: %q, want EIO", out)
	}
}

// snapshotName runs stofuse snapshot (through the mount's daemon) and
// returns the new snapshot's name.
func snapshotName(t *testing.T, s *store) string {
	t.Helper()
	match := snapshotLine.FindStringSubmatch(s.mustRun("snapshot"))
	if match == nil {
		t.Fatal("stofuse snapshot printed no snapshot line")
	}
	return match[1]
}

// listNames lists a directory as ls -f does, without . and ..
func listNames(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// checkReadOnly tries what a user would do in a snapshot; each must fail
// with "Read-only file system" (EROFS), as on a read-only mount, and not
// with "Operation not supported" or "Permission denied".
func checkReadOnly(t *testing.T, root string) {
	t.Helper()
	file := root + "/encoding/json/decode.go"
	for _, cmd := range []string{
		"touch " + root + "/new", "echo x >> " + file, "echo x > " + file, "rm " + file,
		"mkdir " + root + "/dir", "rmdir " + root + "/encoding/hex", "mv " + file + " " + file + ".old",
		"chmod 600 " + file, "touch -d 2001-01-01 " + file, "ln -s x " + root + "/link",
		"rm -r " + root + "/encoding/csv", "mkdir " + filepath.Dir(root) + "/made-up",
	} {
		if out := shFails(t, cmd); !strings.Contains(out, "Read-only file system") {
			t.Errorf("%s: %q, want Read-only file system", cmd, out)
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// damageBlob flips a byte of the stored blob holding the content of file
// (the mount must be unmounted, so that no cache holds its frames).
func damageBlob(t *testing.T, s *store, file string) {
	t.Helper()
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ref := sha256Hex(content)
	f, err := os.OpenFile(filepath.Join(s.dir, "volumes", "default", ref[:3], ref), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 200); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^b[0]}, 200); err != nil {
		t.Fatal(err)
	}
}
