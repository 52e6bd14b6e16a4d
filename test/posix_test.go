package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireRoot fails a test that needs root (to mount a tmpfs, or to act as
// another user) in CI, and skips it elsewhere, as requireFuse does.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and not root: this test must run in CI")
		}
		t.Skip("needs root")
	}
}

// mountTmpfs mounts a tmpfs of size bytes at a new directory, unmounted
// when the test ends.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the tmpfs %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// statfsLine is what stat -f says of a filesystem: block size, total,
// free and available blocks, and the longest name.
func statfsLine(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(sh(t, "stat -f -c '%S %b %f %a %l' "+path))
}

// TestStatfsEverywhere: statfs(2) from every directory and file of the
// mount (the root, ref/ and a blob, files/, a collection, a folder, a file
// and a symlink in it, snapshots/, a collection's snapshots, a snapshot's
// folder and file) says what the volume's own filesystem says (a tmpfs of
// 48 MiB here, not the disk holding the store and its spool), with names
// of up to 255 bytes: getconf NAME_MAX is 255 and df shows the volume's
// size.
func TestStatfsEverywhere(t *testing.T) {
	const size = 48 << 20
	volume := filepath.Join(mountTmpfs(t, size), "volume")
	s := newStore(t)
	s.mustRun("volume", "add", "small", "--path", volume)
	m := s.mount("--volume", "small")
	folder := filepath.Join(m.dir, "files", "default", "folder")
	sh(t, "mkdir "+folder+" && printf 'some bytes' > "+folder+"/file && ln -s file "+folder+"/link")
	match := snapshotLine.FindStringSubmatch(s.mustRun("snapshot", "--volume", "small"))
	if match == nil {
		t.Fatal("stofuse snapshot printed no snapshot line")
	}
	snapshot := match[1]
	paths := []string{
		m.dir, filepath.Join(m.dir, "ref"), m.ref(sha256Hex([]byte("some bytes"))),
		filepath.Join(m.dir, "files"), filepath.Join(m.dir, "files", "default"), folder,
		filepath.Join(folder, "file"), filepath.Join(folder, "link"),
		filepath.Join(m.dir, "snapshots"), filepath.Join(m.dir, "snapshots", "default"),
		filepath.Join(m.dir, "snapshots", "default", snapshot, "folder"),
		filepath.Join(m.dir, "snapshots", "default", snapshot, "folder", "file"),
	}
	// Nothing is written from here on, so the volume's free space holds
	// still (a group commit writes nothing new to the volume).
	want := statfsLine(t, volume)
	if fields := strings.Fields(want); fields[0] != "4096" || fields[1] != fmt.Sprint(size/4096) {
		t.Fatalf("the tmpfs says %q, want 4096-byte blocks, %d of them", want, size/4096)
	}
	want = strings.TrimSuffix(want, strings.Fields(want)[4]) + "255"
	for _, path := range paths {
		if got := statfsLine(t, path); got != want {
			t.Errorf("stat -f %s: %q, want the volume's %q (block size, blocks, free, available, name length)",
				strings.TrimPrefix(path, m.dir), got, want)
		}
	}
	if got := strings.TrimSpace(sh(t, "getconf NAME_MAX "+folder)); got != "255" {
		t.Errorf("getconf NAME_MAX in files/: %s, want 255", got)
	}
	if got, want := sh(t, "df -B1 --output=size "+folder+" | tail -1"), fmt.Sprintln(size); strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("df of a folder of files/: size %s, want the volume's %s", strings.TrimSpace(got), strings.TrimSpace(want))
	}
}

// TestNameLimits: a name of 255 bytes is made, looked up, renamed to and
// linked to as any other; one of 256 bytes (or 1,000) is refused with
// ENAMETOOLONG ("File name too long") by every operation that makes or
// finds a name, in files/, ref/ and snapshots/ alike, and nothing is made.
func TestNameLimits(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	dir := filepath.Join(m.dir, "files", "default")
	longest, tooLong := strings.Repeat("n", 255), strings.Repeat("x", 256)
	sh(t, "cd "+dir+" && touch "+longest+" && mkdir d"+longest[1:]+" && ln -s "+longest+" l"+longest[1:]+
		" && mv "+longest+" m"+longest[1:]+" && stat m"+longest[1:]+" >/dev/null")
	for _, name := range []string{tooLong, strings.Repeat("y", 1000)} {
		for _, cmd := range []string{
			"touch " + name, "mkdir " + name, "mkfifo " + name, "mknod " + name + " c 1 3",
			"ln -s target " + name, "mv m" + longest[1:] + " " + name, "ln m" + longest[1:] + " " + name,
			"stat " + name, "cat " + name, "ls " + name,
			"touch ../../ref/" + name, "stat ../../ref/" + name, "mkdir ../" + name, "stat ../../snapshots/" + name,
		} {
			if out := shFails(t, "cd "+dir+" && "+cmd); !strings.Contains(out, "File name too long") {
				t.Errorf("%s (a %d-byte name): %q, want File name too long", strings.Replace(cmd, name, "NAME", 1), len(name), out)
			}
		}
	}
	if got := listNames(t, dir); len(got) != 3 {
		t.Errorf("files/default/ holds %d names, want the 3 of 255 bytes made", len(got))
	}
}
