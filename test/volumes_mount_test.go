package test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// lsRef lists ref/ of a mount, sorted.
func lsRef(t *testing.T, m *mount) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(m.dir, "ref"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func sorted(names ...string) []string { return slices.Sorted(slices.Values(names)) }

// TestMountShowsEveryVolume: a mount shows in ref/ the blobs of every
// volume of the store, each once, and reads a blob that only another
// volume holds; writes go to --write-volume (the default volume unless
// it says otherwise), which statfs reports; --volume V shows V's blobs
// alone; a volume that is not available hides the blobs only it holds.
func TestMountShowsEveryVolume(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	// The backup volume on a tmpfs of its own, so that statfs tells the
	// write volume's filesystem from the default one's.
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=48m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })
	backup := filepath.Join(small, "backup")
	s.mustRun("volume", "add", "backup", "--path", backup)
	src := t.TempDir()
	onDefault := writeRandomFile(t, filepath.Join(src, "a"), 1, 1000)
	onBackup := writeRandomFile(t, filepath.Join(src, "b"), 2, 300_000)
	onBoth := writeRandomFile(t, filepath.Join(src, "c"), 3, 1000)
	s.mustRun("put", filepath.Join(src, "a"), filepath.Join(src, "c"))
	s.mustRun("put", "--volume", "backup", filepath.Join(src, "b"))
	s.mustRun("replicate", "--from", "default", "--to", "backup", onBoth)

	m := s.mount()
	if got, want := lsRef(t, m), sorted(onDefault, onBackup, onBoth); !slices.Equal(got, want) {
		t.Errorf("ref/ of a mount of every volume: %v, want %v", got, want)
	}
	if got := sh(t, "sha256sum < "+m.ref(onBackup)+" | cut -c1-64"); got != onBackup+"\n" {
		t.Errorf("cat of the blob only the backup volume holds: %s", got)
	}
	if out := s.mustRun("status"); !strings.Contains(out, "mounted:  every volume (writes go to default) at "+m.dir) {
		t.Errorf("status:\n%s", out)
	}
	// A blob only the backup volume holds is there: it cannot be made
	// anew (O_EXCL) nor removed.
	if out := shFails(t, "set -C; echo x > "+m.ref(onBackup)); !strings.Contains(out, onBackup+": File exists") {
		t.Errorf("O_EXCL create of a blob only the backup volume holds: %q", out)
	}
	if out := shFails(t, "rm -f "+m.ref(onBackup)); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("rm of a blob only the backup volume holds: %q, want EPERM", out)
	}
	var defaultFS, mounted syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(s.dir, "volumes", "default"), &defaultFS); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Statfs(m.dir, &mounted); err != nil {
		t.Fatal(err)
	}
	if mounted.Blocks*uint64(mounted.Bsize) != defaultFS.Blocks*uint64(defaultFS.Bsize) {
		t.Errorf("statfs of the mount: %d bytes, want the default volume's filesystem's %d", mounted.Blocks*uint64(mounted.Bsize), defaultFS.Blocks*uint64(defaultFS.Bsize))
	}
	m.unmount()

	m = s.mount("--write-volume", "backup", "--snapshot-interval", "0") // no snapshot at unmount: ref/ below shows the file alone
	if err := syscall.Statfs(m.dir, &mounted); err != nil {
		t.Fatal(err)
	}
	if size := mounted.Blocks * uint64(mounted.Bsize); size != 48<<20 {
		t.Errorf("statfs of a mount writing to the backup volume: %d bytes, want its 48 MiB tmpfs", size)
	}
	written := writeRandomFile(t, filepath.Join(m.dir, "files", "default", "new"), 4, 5000)
	if got := s.volumesOf(written); got != "backup" {
		t.Errorf("a file written through a mount with --write-volume backup is on %q", got)
	}
	m.unmount()

	m = s.mount("--volume", "backup")
	if got, want := lsRef(t, m), sorted(onBackup, onBoth, written); !slices.Equal(got, want) {
		t.Errorf("ref/ of a mount of the backup volume: %v, want %v", got, want)
	}
	m.unmount()
	if r := s.run("mount", "--volume", "default", "--write-volume", "backup", t.TempDir()); r.code != 2 ||
		r.stderr != "stofuse: --volume default mounts that volume alone, so writes go to it: --write-volume backup is another\n" {
		t.Errorf("mount --volume default --write-volume backup: exit %d, %q", r.code, r.stderr)
	}

	// The backup volume's disk unplugged: its blobs that no other volume
	// holds are not shown.
	if err := os.Rename(backup, backup+".away"); err != nil {
		t.Fatal(err)
	}
	m = s.mount()
	if got, want := lsRef(t, m), sorted(onDefault, onBoth); !slices.Equal(got, want) {
		t.Errorf("ref/ with the backup volume away: %v, want %v", got, want)
	}
	if _, err := os.Stat(m.ref(onBackup)); !os.IsNotExist(err) {
		t.Errorf("stat of a blob only the absent volume holds: %v, want ENOENT", err)
	}
	if out := shFails(t, "rm "+m.ref(onBackup)); !strings.Contains(out, "No such file or directory") {
		t.Errorf("rm of a blob only the absent volume holds: %q, want ENOENT", out)
	}
	m.unmount()
	if err := os.Rename(backup+".away", backup); err != nil {
		t.Fatal(err)
	}
}

// TestGCRemovesFromMergedRef: a blob only the backup volume holds, seen
// through ref/ of a mount of every volume (the kernel keeps its entry for
// an hour), released and removed by gc through the daemon, is gone from
// ref/ at once.
func TestGCRemovesFromMergedRef(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	s.mustRun("volume", "add", "backup", "--path", filepath.Join(t.TempDir(), "backup"))
	src := t.TempDir()
	ref := writeRandomFile(t, filepath.Join(src, "b"), 5, 3000)
	s.mustRun("put", "--volume", "backup", filepath.Join(src, "b"))
	m := s.mount()
	if _, err := os.Stat(m.ref(ref)); err != nil {
		t.Fatalf("stat of the backup volume's blob through ref/: %v", err)
	}
	s.mustRun("release", ref)
	if out := s.mustRun("gc", "--grace", "0"); !strings.Contains(out, "backup") {
		t.Errorf("gc through the daemon:\n%s", out)
	}
	if _, err := os.Stat(m.ref(ref)); !os.IsNotExist(err) {
		t.Errorf("stat of the blob gc removed from the backup volume: %v, want ENOENT at once", err)
	}
	if names := lsRef(t, m); slices.Contains(names, ref) {
		t.Errorf("ref/ still lists the blob gc removed")
	}
}

// TestMergedRefListsPages: ref/ of a mount of every volume lists 5,000
// blobs, more than one page of the listing (4,096), each once and in
// order, some on the default volume, some on the backup one, some on
// both.
func TestMergedRefListsPages(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	s.mustRun("volume", "add", "backup", "--path", filepath.Join(t.TempDir(), "backup"))
	dir := t.TempDir()
	var want []string
	put := func(from, to int, args ...string) []string {
		var paths, refs []string
		for i := from; i < to; i++ {
			path := filepath.Join(dir, strconv.Itoa(i))
			content := []byte("blob " + strconv.Itoa(i))
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			paths, refs = append(paths, path), append(refs, sha256Hex(content))
		}
		s.mustRun(append(append([]string{"put"}, args...), paths...)...)
		return refs
	}
	onDefault := put(0, 3000)
	want = append(append(want, onDefault...), put(3000, 5000, "--volume", "backup")...)
	s.mustRun(append([]string{"replicate", "--from", "default", "--to", "backup"}, onDefault[:500]...)...)
	m := s.mount()
	// ls -f: the names as READDIR gives them, unsorted.
	got := strings.Fields(sh(t, "ls -f "+filepath.Join(m.dir, "ref")+" | grep -v '^\\.'"))
	if !slices.Equal(got, sorted(want...)) {
		t.Errorf("ls -f of ref/ listed %d names (want the 5,000 blobs, each once, in ref order)", len(got))
	}
	if out := sh(t, "find "+filepath.Join(m.dir, "ref")+" -type f | wc -l"); out != "5000\n" {
		t.Errorf("find -type f of ref/: %q entries", out)
	}
}
