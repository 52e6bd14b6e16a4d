package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// nobody is the uid and gid the permission tests act as: not root, in no
// group but its own.
const nobody = 65534

// asNobody runs a shell command line as uid and gid 65534 with no other
// groups, and returns its output and whether it succeeded.
func asNobody(t *testing.T, cmdline string) (string, bool) {
	t.Helper()
	requireRoot(t)
	out, err := exec.Command("setpriv", "--reuid", fmt.Sprint(nobody), "--regid", fmt.Sprint(nobody), "--clear-groups",
		"sh", "-c", cmdline).CombinedOutput()
	return string(out), err == nil
}

// reachable lets other users reach the mount: the test's temporary
// directories above it are 0700.
func reachable(t *testing.T, m *mount) {
	t.Helper()
	for d := filepath.Dir(m.dir); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// statLine is what stat says of a file: octal mode (setuid, setgid and
// sticky bits included), owner and group.
func statLine(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(sh(t, "stat -c '%a %u %g' "+path))
}

// TestPermissions: on a mount made with --allow-other the kernel enforces
// the owners and modes of files/ (default_permissions) for every user:
// another user can neither read a 0600 file, nor its blob through ref/
// (the mount owner's alone, mode 0700), nor its copy in a snapshot, which
// shows the recorded owner and mode; a file its mode lets everyone read
// reads for them. Owners and modes are kept exactly (setuid, setgid and
// sticky bits too, and a mode of 0) across a remount and in snapshots; what is made in a
// setgid directory gets its group, and a directory the setgid bit too; a
// write or a chown by someone other than root clears the setuid and setgid
// bits as Linux does, a write by root does not. Without --allow-other,
// another user cannot reach the mount at all.
func TestPermissions(t *testing.T) {
	s := newStore(t)
	m := s.mount("--allow-other")
	reachable(t, m)
	dir := filepath.Join(m.dir, "files", "default")
	secret, public := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	sh(t, "printf 'top secret' > "+secret+" && chmod 600 "+secret+" && printf 'for all' > "+public)
	secretRef := sha256Hex([]byte("top secret"))

	// Kept exactly: every mode bit, and owners root set.
	modes := filepath.Join(dir, "modes")
	sh(t, "mkdir "+modes+" && touch "+modes+"/all "+modes+"/suid && chmod 7777 "+modes+"/all && chown 1234:4321 "+modes+"/suid"+
		" && chmod 4711 "+modes+"/suid && chmod 1777 "+modes)
	// The setgid-directory rule.
	shared := filepath.Join(dir, "shared")
	sh(t, "mkdir "+shared+" && chgrp 4321 "+shared+" && chmod 2775 "+shared+" && touch "+shared+"/file && mkdir "+shared+"/sub")
	sh(t, "cd "+modes+" && (umask 777 && touch none && mkdir nodir)")
	wantModes := map[string]string{
		modes: "1777 0 0", modes + "/all": "7777 0 0", modes + "/suid": "4711 1234 4321",
		shared + "/file": "644 0 4321", shared + "/sub": "2755 0 4321", secret: "600 0 0",
		modes + "/none": "0 0 0", modes + "/nodir": "0 0 0",
	}
	checkModes := func(when string, root string) {
		t.Helper()
		for path, want := range wantModes {
			path = filepath.Join(root, strings.TrimPrefix(path, dir))
			if got := statLine(t, path); got != want {
				t.Errorf("%s: stat of %s: %q, want %q (mode, uid, gid)", when, strings.TrimPrefix(path, m.dir), got, want)
			}
		}
	}
	checkModes("as made", dir)
	match := snapshotLine.FindStringSubmatch(s.mustRun("snapshot"))
	if match == nil {
		t.Fatal("stofuse snapshot printed no snapshot line")
	}
	view := filepath.Join(m.dir, "snapshots", "default", match[1])
	checkModes("in the snapshot", view)

	for _, cmd := range []string{
		"cat " + secret, "cat " + m.ref(secretRef), "ls " + filepath.Join(m.dir, "ref"), "cat " + filepath.Join(view, "secret"),
		"touch " + filepath.Join(dir, "mine"), "mkdir " + filepath.Join(m.dir, "files", "mine"),
	} {
		if out, ok := asNobody(t, cmd); ok || !strings.Contains(out, "Permission denied") {
			t.Errorf("as another user, %s: %q, want Permission denied", strings.ReplaceAll(cmd, m.dir, "MOUNT"), out)
		}
	}
	if out, ok := asNobody(t, "chmod 666 "+secret); ok || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("as another user, chmod of root's file: %q, want Operation not permitted", out)
	}
	for _, path := range []string{public, filepath.Join(view, "public")} {
		if out, ok := asNobody(t, "cat "+path); !ok || out != "for all" {
			t.Errorf("as another user, cat of a 0644 file %s: %q", strings.TrimPrefix(path, m.dir), out)
		}
	}

	// A write by another user (the file is world-writable) clears setuid
	// and setgid; root's does not; a chown by its owner clears them.
	sh(t, "touch "+modes+"/w && chmod 6777 "+modes+"/w && touch "+modes+"/r && chmod 6755 "+modes+"/r && printf x >> "+modes+"/r")
	if out, ok := asNobody(t, "printf x >> "+modes+"/w"); !ok {
		t.Fatalf("as another user, writing a 6777 file: %s", out)
	}
	sh(t, "touch "+modes+"/c && chown 65534:65534 "+modes+"/c && chmod 6755 "+modes+"/c")
	if out, ok := asNobody(t, "chown 65534:65534 "+modes+"/c"); !ok {
		t.Fatalf("as its owner, chown of a file to its own owner and group: %s", out)
	}
	wantModes[modes+"/w"], wantModes[modes+"/r"], wantModes[modes+"/c"] = "777 0 0", "6755 0 0", "755 65534 65534"
	checkModes("after the writes and chown", dir)

	m.unmount()
	m = s.mount("--allow-other")
	reachable(t, m)
	checkModes("after a remount", filepath.Join(m.dir, "files", "default"))
	m.unmount()

	m = s.mount()
	reachable(t, m)
	if out, ok := asNobody(t, "cat "+filepath.Join(m.dir, "files", "default", "public")); ok || !strings.Contains(out, "Permission denied") {
		t.Errorf("as another user, without --allow-other: %q, want Permission denied", out)
	}
}

// TestAllowOtherAsUser: a user other than root may mount with
// --allow-other only if /etc/fuse.conf has user_allow_other (fusermount3's
// rule); without it the mount is refused at once with exit code 2 and a
// message that says what to add, and nothing is mounted.
func TestAllowOtherAsUser(t *testing.T) {
	requireFuse(t)
	home := t.TempDir()
	bin := filepath.Join(home, "stofuse")
	sh(t, "cp "+stofuseBin+" "+bin+" && mkdir "+home+"/mnt && chown -R 65534:65534 "+home+" && chmod 755 "+home+" "+filepath.Dir(home))
	mnt := filepath.Join(home, "mnt")
	conf, _ := os.ReadFile("/etc/fuse.conf")
	allowed := regexp.MustCompile(`(?m)^\s*user_allow_other\s*$`).Match(conf)
	out, ok := asNobody(t, "STOFUSE_STORE="+home+"/store "+bin+" mount --background --allow-other "+mnt+"; echo exit $?")
	if !allowed {
		want := "stofuse: --allow-other: a user other than root may use it only if /etc/fuse.conf has a line user_allow_other (as root, add it)\nexit 2\n"
		if !ok || out != want {
			t.Errorf("mount --allow-other as another user without user_allow_other: %q, want %q", out, want)
		}
		if isMounted(mnt) {
			t.Errorf("%s is mounted", mnt)
		}
		return
	}
	t.Cleanup(func() {
		if isMounted(mnt) {
			asNobody(t, "STOFUSE_STORE="+home+"/store "+bin+" unmount "+mnt)
		}
	})
	if !strings.HasSuffix(out, "exit 0\n") || !isMounted(mnt) {
		t.Fatalf("mount --allow-other as another user, with user_allow_other in /etc/fuse.conf: %q", out)
	}
	if out, ok := asNobody(t, "STOFUSE_STORE="+home+"/store "+bin+" unmount "+mnt); !ok {
		t.Errorf("unmount as the user who mounted: %s", out)
	}
}

// TestAtime: files/ keeps a file's atime as set (touch -a, and at
// creation) apart from its mtime, to the nanosecond; reading does not
// change it (as noatime), nor does a remount. A snapshot keeps none: its
// view shows the mtime as the atime.
func TestAtime(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	file := filepath.Join(m.dir, "files", "default", "f")
	sh(t, "printf content > "+file+" && touch -a -d '2001-02-03 04:05:06.123456789Z' "+file+
		" && touch -m -d '2011-12-13 14:15:16.987654321Z' "+file)
	want := "2001-02-03 04:05:06.123456789 +0000|2011-12-13 14:15:16.987654321 +0000\n"
	times := func(path string) string { return sh(t, "TZ=UTC stat -c '%x|%y' "+path) }
	if got := times(file); got != want {
		t.Fatalf("atime|mtime after touch -a and touch -m: %q, want %q", got, want)
	}
	sh(t, "cat "+file+" >/dev/null")
	if got := times(file); got != want {
		t.Errorf("after a read: %q, want %q (reads do not change the atime)", got, want)
	}
	snapshot := snapshotName(t, s)
	m.unmount()
	m = s.mount()
	if got := times(filepath.Join(m.dir, "files", "default", "f")); got != want {
		t.Errorf("after a remount: %q, want %q", got, want)
	}
	if got := times(filepath.Join(m.dir, "snapshots", "default", snapshot, "f")); got != "2011-12-13 14:15:16.987654321 +0000|2011-12-13 14:15:16.987654321 +0000\n" {
		t.Errorf("in a snapshot: %q, want the mtime as the atime", got)
	}
}
