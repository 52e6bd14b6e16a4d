package test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// bindReadOnly makes dir read-only where it is (a read-only bind mount of
// itself, as a write-protected disk would be), so that the store's
// registered volume paths inside it are read-only too; undone when the
// test ends.
func bindReadOnly(t *testing.T, dir string) {
	t.Helper()
	requireRoot(t)
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the bind mount %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("a write into the read-only bind mount: %v, want EROFS", err)
	}
}

// treeDigest lists every name under dir with its size, mtime and mode,
// and the SHA-256 of every regular file: what must not change.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	return sh(t, "cd "+dir+" && find . -printf '%p %s %T@ %m\\n' | sort && find . -type f -exec sha256sum {} + | sort")
}

// readOnlyEnv gives the store's commands a runtime directory and a
// temporary directory of the test's own, so that what they put there is
// seen (and cleaned up).
func readOnlyEnv(t *testing.T, s *store) (runtime, tmp string) {
	runtime, tmp = filepath.Join(t.TempDir(), "run"), filepath.Join(t.TempDir(), "tmp")
	for _, d := range []string{runtime, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.env = append(s.env, "XDG_RUNTIME_DIR="+runtime, "TMPDIR="+tmp)
	return runtime, tmp
}

// readOnlyCase is what a store on read-only media must serve.
type readOnlyCase struct {
	blob   string            // a blob that reads back (its ref is its SHA-256)
	lost   string            // a blob whose copy did not survive ("" if none)
	files  map[string]string // files/default/... names and the SHA-256 of their content
	absent []string          // files/default/... names that must not show
}

// checkReadOnlyMedia makes the store's directory read-only and runs what
// must work there: cat, stat, scrub, status, mount --read-only with cp -a
// and sha256sum of files/ and a read of ref/; put and a writable mount
// fail in one line naming the read-only filesystem. Nothing in the
// directory changes.
func checkReadOnlyMedia(t *testing.T, s *store, c readOnlyCase) {
	runtime, tmp := readOnlyEnv(t, s)
	before := treeDigest(t, s.dir)
	bindReadOnly(t, s.dir)

	if got := sha256Hex([]byte(s.mustRun("cat", c.blob))); got != c.blob {
		t.Errorf("cat %s: content hashes to %s", c.blob, got)
	}
	if out := s.mustRun("stat", c.blob); !strings.Contains(out, "ref:         "+c.blob) {
		t.Errorf("stat %s: %q", c.blob, out)
	}
	if r := s.run("scrub"); r.code != 0 || !strings.Contains(r.stdout, "0 damaged, 0 missing") {
		t.Errorf("scrub: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if out := s.mustRun("status"); !strings.Contains(out, "opened read-only") {
		t.Errorf("status does not say the store is read-only: %q", out)
	}
	if c.lost != "" {
		if r := s.run("cat", c.lost); r.code != 1 {
			t.Errorf("cat of a blob whose copy was lost: exit %d, %q", r.code, r.stderr)
		}
	}
	src := filepath.Join(t.TempDir(), "new")
	os.WriteFile(src, []byte("new content\n"), 0o644)
	mnt := filepath.Join(t.TempDir(), "rw")
	os.Mkdir(mnt, 0o755)
	for _, args := range [][]string{{"put", src}, {"mount", "--background", mnt}} {
		r := s.run(args...)
		if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 ||
			!strings.Contains(r.stderr, "read-only file system") || !strings.Contains(r.stderr, "mount --read-only") {
			t.Errorf("stofuse %s on read-only media: exit %d, %q; want exit 1 and one line naming the read-only filesystem",
				strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if isMounted(mnt) {
		t.Fatalf("a writable mount of read-only media was made at %s", mnt)
	}

	m := s.mount("--read-only")
	if out := s.mustRun("status"); !strings.Contains(out, "at "+m.dir+", read-only") {
		t.Errorf("status does not reach the read-only mount's daemon: %q", out)
	}
	if sockets, _ := filepath.Glob(filepath.Join(runtime, "stofuse", "*.sock")); len(sockets) != 1 {
		t.Errorf("control sockets in the runtime directory: %v, want one", sockets)
	}
	copied := filepath.Join(t.TempDir(), "copy")
	sh(t, "cp -a "+filepath.Join(m.dir, "files", "default")+" "+copied)
	for name, sum := range c.files {
		if got := strings.Fields(sh(t, "sha256sum "+filepath.Join(copied, name)))[0]; got != sum {
			t.Errorf("files/default/%s copied out: SHA-256 %s, want %s", name, got, sum)
		}
	}
	for _, name := range c.absent {
		if _, err := os.Lstat(filepath.Join(copied, name)); err == nil {
			t.Errorf("files/default/%s shows on the read-only mount; it must not", name)
		}
	}
	if got := strings.Fields(sh(t, "sha256sum "+m.ref(c.blob)))[0]; got != c.blob {
		t.Errorf("ref/%s reads as %s", c.blob, got)
	}
	if out := shFails(t, "touch "+filepath.Join(m.dir, "files", "default", "x")); !strings.Contains(out, "Read-only file system") {
		t.Errorf("a write into the read-only mount: %q, want EROFS", out)
	}
	m.unmount()

	if after := treeDigest(t, s.dir); after != before {
		t.Errorf("the read-only store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}

// TestReadOnlyMediaAfterCleanUnmount: a store written through a mount and
// cleanly unmounted is read from read-only media without a byte written.
func TestReadOnlyMediaAfterCleanUnmount(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	m := s.mount()
	dir := filepath.Join(m.dir, "files", "default")
	os.MkdirAll(filepath.Join(dir, "docs", "sub"), 0o755)
	files := map[string]string{
		"docs/big":       writeRandomFile(t, filepath.Join(dir, "docs", "big"), 1, 3<<20),
		"docs/sub/small": writeRandomFile(t, filepath.Join(dir, "docs", "sub", "small"), 2, 1000),
	}
	src := filepath.Join(t.TempDir(), "put")
	blob := writeRandomFile(t, src, 3, 200_000)
	s.mustRun("put", src)
	m.unmount()
	checkReadOnlyMedia(t, s, readOnlyCase{blob: blob, files: files})
}

// TestReadOnlyMediaAfterKill: a mount daemon killed with kill -9 after
// writing files leaves a memtable log that Badger's read-only mode
// refuses, a journal of what a power loss may have undone, and a file
// being written. On read-only media every read command and mount
// --read-only still work, from a private copy of the metadata settled in
// a temporary directory: a file whose blob did not survive (removed from
// the volume here, as a power loss would) does not show, nor does the
// file that was being written; the others read back; nothing in the
// store changes, and the copy is gone afterwards.
func TestReadOnlyMediaAfterKill(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	m := s.mount("--commit-interval", "1h") // keep the journal's entries
	src := filepath.Join(t.TempDir(), "put")
	blob := writeRandomFile(t, src, 7, 100_000)
	s.mustRun("put", src) // through the daemon, which commits after it
	dir := filepath.Join(m.dir, "files", "default")
	files := map[string]string{
		"kept1": writeRandomFile(t, filepath.Join(dir, "kept1"), 4, 500_000),
		"kept2": writeRandomFile(t, filepath.Join(dir, "kept2"), 5, 2000),
	}
	lost := writeRandomFile(t, filepath.Join(dir, "lost"), 6, 300_000)
	partial, err := os.Create(filepath.Join(dir, "partial"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := partial.Write(make([]byte, 200_000)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(m.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed daemon to exit", func() bool { return processGone(m.pid) })
	partial.Close()
	exec.Command("umount", "-l", m.dir).Run() // the dead mount
	if logs, _ := filepath.Glob(filepath.Join(s.dir, "meta", "*.mem")); len(logs) == 0 {
		t.Fatal("the kill left no memtable log: the case Badger's read-only mode refuses is not made")
	}
	if err := os.Remove(storedPath(filepath.Join(s.dir, "volumes", "default"), lost)); err != nil {
		t.Fatal(err)
	}

	checkReadOnlyMedia(t, s, readOnlyCase{blob: blob, lost: lost, files: files, absent: []string{"lost", "partial"}})
	r := s.run("stat", blob) // on the read-only media still
	if !strings.Contains(r.stderr, "private copy") || !strings.Contains(r.stderr, "removed: default/lost") {
		t.Errorf("stat on the read-only store after a kill does not say it read a private copy and what it settled: %q", r.stderr)
	}
}
