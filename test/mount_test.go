package test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMountCopyInAndOut: cp into ref/ under the hex name and under any
// other name, cp back out, cmp; sha256sum ref/* prints each file's own
// name; new blobs are listed at once.
func TestMountCopyInAndOut(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	src := t.TempDir()
	big := writeRandomFile(t, filepath.Join(src, "big"), 1, 5<<20+17)
	small := "hello, mount\n"
	os.WriteFile(filepath.Join(src, "small"), []byte(small), 0o644)
	smallRef := sha256Hex([]byte(small))

	sh(t, "cp "+filepath.Join(src, "big")+" "+m.ref(big))
	sh(t, "cp "+filepath.Join(src, "small")+" "+m.ref("notes.txt"))
	listing := sh(t, "ls "+m.ref(""))
	for _, name := range []string{big, smallRef, "notes.txt"} {
		if !strings.Contains(listing, name+"\n") {
			t.Fatalf("ls ref/ right after cp does not list %s:\n%s", name, listing)
		}
	}
	out := t.TempDir()
	sh(t, "cp "+m.ref(big)+" "+filepath.Join(out, "big"))
	sh(t, "cmp "+filepath.Join(src, "big")+" "+filepath.Join(out, "big"))
	sh(t, "cmp "+filepath.Join(src, "small")+" "+m.ref(smallRef))
	sh(t, "cmp "+filepath.Join(src, "small")+" "+m.ref("notes.txt"))

	sums := sh(t, "cd "+m.ref("")+" && sha256sum [0-9a-f]*")
	lines := strings.Split(strings.TrimSpace(sums), "\n")
	if len(lines) != 2 {
		t.Fatalf("sha256sum ref/* printed %d lines, want 2:\n%s", len(lines), sums)
	}
	for _, line := range lines {
		if hash, name, _ := strings.Cut(line, "  "); hash != name {
			t.Fatalf("sha256sum says %s holds %s", name, hash)
		}
	}
	// The store knows both blobs, readable with the CLI after unmount.
	m.unmount()
	if got := s.mustRun("cat", smallRef); got != small {
		t.Fatalf("stofuse cat after the mount = %q", got)
	}
}

// TestMountWrongContentUnderHexName: close fails with EIO and nothing is
// stored.
func TestMountWrongContentUnderHexName(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("not what the name says\n"), 0o644)
	wrongName := sha256Hex([]byte("something else"))
	out := shFails(t, "cp "+src+" "+m.ref(wrongName))
	if !strings.Contains(out, "Input/output error") {
		t.Fatalf("cp of wrong content printed %q, want an I/O error", out)
	}
	if _, err := os.Stat(m.ref(wrongName)); !os.IsNotExist(err) {
		t.Fatalf("the wrong name is still there after the failed cp: %v", err)
	}
	if listing := sh(t, "ls -A "+m.ref("")); listing != "" {
		t.Fatalf("ref/ lists %q after a failed cp", listing)
	}
	m.unmount()
	if volumes := s.mustRun("--json", "volume", "ls"); !strings.Contains(volumes, `"blob_count":0`) {
		t.Fatalf("a failed cp stored something: %s", volumes)
	}
}

// TestMountRsync: rsync -a in (temp name, times, rename) and out, twice;
// the second pass, and a pass after remounting, transfer nothing.
func TestMountRsync(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	src := filepath.Join(t.TempDir(), "src")
	names := writeHashNamed(t, src, 40, 1)

	transferred := regexp.MustCompile(`Number of regular files transferred: (\d+)`)
	rsyncCount := func(from, to string) string {
		t.Helper()
		out := sh(t, "rsync -a --stats "+from+"/ "+to+"/")
		match := transferred.FindStringSubmatch(out)
		if match == nil {
			t.Fatalf("no transfer count in rsync --stats:\n%s", out)
		}
		return match[1]
	}
	if n := rsyncCount(src, m.ref("")); n != "40" {
		t.Fatalf("first rsync in transferred %s files, want 40", n)
	}
	if n := rsyncCount(src, m.ref("")); n != "0" {
		t.Fatalf("second rsync in transferred %s files, want 0", n)
	}
	out := filepath.Join(t.TempDir(), "out")
	if n := rsyncCount(m.ref(""), out); n != "40" {
		t.Fatalf("rsync out transferred %s files, want 40", n)
	}
	sh(t, "diff -r "+src+" "+out)
	if n := rsyncCount(m.ref(""), out); n != "0" {
		t.Fatalf("second rsync out transferred %s files, want 0", n)
	}

	m.unmount()
	m = s.mount()
	if n := rsyncCount(src, m.ref("")); n != "0" {
		t.Fatalf("rsync in after a remount transferred %s files, want 0", n)
	}
	if n := rsyncCount(m.ref(""), out); n != "0" {
		t.Fatalf("rsync out after a remount transferred %s files, want 0", n)
	}
	if listing := strings.Fields(sh(t, "ls "+m.ref(""))); len(listing) != len(names) {
		t.Fatalf("ref/ lists %d files after rsync, want %d (no temp names left)", len(listing), len(names))
	}
}

// TestMountTar: tar reads every blob without "file changed as we read it",
// and the archive holds the right bytes.
func TestMountTar(t *testing.T) {
	s := newStore(t)
	src := filepath.Join(t.TempDir(), "src")
	names := writeHashNamed(t, src, 20, 2)
	var paths []string
	for _, name := range names {
		paths = append(paths, filepath.Join(src, name))
	}
	s.mustRun(append([]string{"put"}, paths...)...)
	m := s.mount()

	listing := sh(t, "tar -C "+m.ref("")+" -cf - . 2>tar.err | tar -tvf - ; cat tar.err; rm -f tar.err")
	if strings.Contains(listing, "changed as we read it") || strings.Contains(listing, "tar:") {
		t.Fatalf("tar complained:\n%s", listing)
	}
	if got := strings.Count(listing, "\n-rw-r--r--") + strings.Count(listing, "-rw-r--r--")/len(names)*0; got < len(names)-1 {
		t.Fatalf("tar listed %d files, want %d:\n%s", got, len(names), listing)
	}
	out := t.TempDir()
	sh(t, "tar -C "+m.ref("")+" -cf - . | tar -C "+out+" -xf -")
	sh(t, "diff -r "+src+" "+out)
}

// TestMountDamagedBlob: a damaged blob reads as EIO, other blobs read
// fine, and the mount stays up.
func TestMountDamagedBlob(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	bad := writeRandomFile(t, filepath.Join(dir, "bad"), 3, 1<<20)
	good := writeRandomFile(t, filepath.Join(dir, "good"), 4, 1<<20)
	s.mustRun("put", filepath.Join(dir, "bad"), filepath.Join(dir, "good"))
	stored := filepath.Join(s.dir, "volumes", "default", bad[:3], bad)
	f, err := os.OpenFile(stored, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff, 0xff}, 600_000) // in frame 4
	f.Close()

	m := s.mount()
	out := shFails(t, "cat "+m.ref(bad)+" > /dev/null")
	if !strings.Contains(out, "Input/output error") {
		t.Fatalf("cat of a damaged blob: %q, want an I/O error", out)
	}
	// The frames before the damage read fine; none of the damaged frame.
	got, _ := exec.Command("dd", "if="+m.ref(bad), "bs=128k", "count=4", "status=none").Output()
	want, _ := os.ReadFile(filepath.Join(dir, "bad"))
	if !bytes.Equal(got, want[:4<<17]) {
		t.Fatalf("the undamaged frames of the blob read wrong (%d bytes)", len(got))
	}
	sh(t, "cmp "+filepath.Join(dir, "good")+" "+m.ref(good))
	sh(t, "ls "+m.ref(""))
	log, _ := os.ReadFile(filepath.Join(s.dir, "mount.log"))
	if !regexp.MustCompile(`read ref/` + bad + `: blob ` + bad + ` on volume 1 is corrupt \(frame 4\)`).Match(log) {
		t.Fatalf("the daemon's log does not name the blob and frame:\n%s", log)
	}
}

// TestMountReadOnly: every write is EROFS, reads work.
func TestMountReadOnly(t *testing.T) {
	s := newStore(t)
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("read only\n"), 0o644)
	ref := sha256Hex([]byte("read only\n"))
	s.mustRun("put", src)
	m := s.mount("--read-only")
	sh(t, "cmp "+src+" "+m.ref(ref))
	for _, cmd := range []string{
		"cp " + src + " " + m.ref("new"),
		"cp " + src + " " + m.ref(ref),
		"touch " + m.ref(ref),
		"rm -f " + m.ref(ref),
		"mv " + m.ref(ref) + " " + m.ref("x"),
		"mkdir " + m.ref("d"),
	} {
		if out := shFails(t, cmd); !strings.Contains(out, "Read-only file system") {
			t.Errorf("%s: %q, want EROFS", cmd, out)
		}
	}
	if opts := sh(t, "grep ' "+m.dir+" ' /proc/self/mounts"); !strings.Contains(opts, " ro,") {
		t.Errorf("the kernel's read-only flag is not set: %s", opts)
	}
}

// TestMountCommittedBlobsAreImmutable: rm, mv and changing writes are EPERM;
// writing the same content again succeeds and stores nothing new; touch
// sets the time, which survives a remount along with inode and size.
func TestMountCommittedBlobsAreImmutable(t *testing.T) {
	s := newStore(t)
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("immutable\n"), 0o644)
	ref := sha256Hex([]byte("immutable\n"))
	s.mustRun("put", src)
	m := s.mount()
	for _, cmd := range []string{"rm " + m.ref(ref), "mv " + m.ref(ref) + " " + m.ref("x"), "echo more >> " + m.ref(ref)} {
		if out := shFails(t, cmd); !strings.Contains(out, "Operation not permitted") {
			t.Errorf("%s: %q, want EPERM", cmd, out)
		}
	}
	sh(t, "cp "+src+" "+m.ref(ref)) // the same content again: fine
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("changed\n"), 0o644)
	shFails(t, "cp "+other+" "+m.ref(ref))
	shFails(t, "cp /dev/null "+m.ref(ref))
	shFails(t, "truncate -s 0 "+m.ref(ref))
	sh(t, "cmp "+src+" "+m.ref(ref))

	sh(t, "touch -d '2001-02-03 04:05:06' "+m.ref(ref))
	var before, after unix.Stat_t
	if err := unix.Stat(m.ref(ref), &before); err != nil {
		t.Fatal(err)
	}
	if time.Unix(before.Mtim.Unix()).UTC().Format(time.DateTime) != "2001-02-03 04:05:06" {
		t.Fatalf("mtime after touch -d = %v", time.Unix(before.Mtim.Unix()))
	}
	m.unmount()
	m = s.mount()
	if err := unix.Stat(m.ref(ref), &after); err != nil {
		t.Fatal(err)
	}
	if before.Ino != after.Ino || before.Size != after.Size || before.Mtim != after.Mtim || before.Blocks != after.Blocks {
		t.Fatalf("attributes changed across a remount: %+v, then %+v", before, after)
	}
	if after.Blocks == 0 {
		t.Fatal("block count not set")
	}
}

// TestMountXattrs reads the user.stofuse.* attributes. Other user.* names
// are ENODATA; security.* and ACLs (system.posix_acl_*), which the mount
// does not keep, are ENOTSUP, for a blob and for a file of files/ (which
// is what lets ls -l stop asking for them on every file).
func TestMountXattrs(t *testing.T) {
	s := newStore(t)
	src := filepath.Join(t.TempDir(), "f")
	content := bytes.Repeat([]byte("compress me "), 10000)
	os.WriteFile(src, content, 0o644)
	ref := sha256Hex(content)
	s.mustRun("put", src)
	m := s.mount()
	get := func(name string) (string, error) {
		buf := make([]byte, 256)
		n, err := unix.Getxattr(m.ref(ref), name, buf)
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	for name, want := range map[string]string{
		"user.stofuse.sha256": ref, "user.stofuse.compressed": "true", "user.stofuse.volumes": "default",
	} {
		if got, err := get(name); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if got, err := get("user.stofuse.crc32c"); err != nil || len(got) != 8 {
		t.Errorf("user.stofuse.crc32c = %q, %v", got, err)
	}
	if got, err := get("user.stofuse.size_on_disk"); err != nil || got == "" || got == "120000" {
		t.Errorf("user.stofuse.size_on_disk = %q, %v", got, err)
	}
	for _, path := range []string{m.ref(ref), filepath.Join(m.dir, "files", "default", "plain")} {
		if path != m.ref(ref) {
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, want := range map[string]error{
			"user.other": unix.ENODATA, "security.selinux": unix.ENOTSUP, "security.capability": unix.ENOTSUP,
			"system.posix_acl_access": unix.ENOTSUP, "trusted.x": unix.ENOTSUP,
		} {
			if _, err := unix.Getxattr(path, name, make([]byte, 64)); err != want {
				t.Errorf("getxattr %s %s: %v, want %v", path, name, err, want)
			}
		}
	}
	list := make([]byte, 1024)
	n, err := unix.Listxattr(m.ref(ref), list)
	if err != nil || !strings.Contains(string(list[:n]), "user.stofuse.volumes") {
		t.Errorf("listxattr = %q, %v", list[:n], err)
	}
}

// TestMountErrors: a wrong key fails before mounting; a missing or busy
// mountpoint is one clear line; SIGTERM unmounts a foreground mount.
func TestMountErrors(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)

	wrongKey := filepath.Join(t.TempDir(), "wrong.key")
	s.mustRun("key", "generate", wrongKey)
	r := s.run("--key-file", wrongKey, "mount", "--background", mnt)
	if r.code != 2 || !strings.Contains(r.stderr, "wrong key") || isMounted(mnt) {
		t.Fatalf("mount with a wrong key: exit %d, %q, mounted=%v", r.code, r.stderr, isMounted(mnt))
	}
	r = s.run("mount", "--background", filepath.Join(mnt, "missing"))
	if r.code != 2 || !strings.Contains(r.stderr, "does not exist: create it first") {
		t.Fatalf("mount on a missing directory: exit %d, %q", r.code, r.stderr)
	}
	m := s.mountAt(mnt)
	r = s.run("mount", "--background", mnt)
	if r.code != 2 || !strings.Contains(r.stderr, "is busy: something is mounted there already") {
		t.Fatalf("mount on a busy mountpoint: exit %d, %q", r.code, r.stderr)
	}
	m.unmount()
	if r := s.run("unmount", mnt); r.code != 2 || !strings.Contains(r.stderr, "is not mounted") {
		t.Fatalf("unmount of an unmounted directory: exit %d, %q", r.code, r.stderr)
	}

	// Foreground, then SIGTERM.
	cmd := exec.Command(stofuseBin, "mount", mnt)
	cmd.Env = s.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isMounted(mnt) {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	waitFor(t, "the foreground mount", func() bool { return isMounted(mnt) })
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("foreground mount after SIGTERM: %v\n%s", err, stderr.String())
	}
	if isMounted(mnt) || !strings.Contains(stderr.String(), "unmounted "+mnt) {
		t.Fatalf("SIGTERM did not unmount cleanly:\n%s", stderr.String())
	}
}

// TestMountLargeFile copies a 3 GiB file in and reads it back; the daemon's
// peak memory stays under 200 MiB (the file is spooled to disk and stored
// frame by frame).
func TestMountLargeFile(t *testing.T) {
	const size = 3 << 30
	const rssLimit = 200 << 20
	s := newStore(t)
	m := s.mount()
	src := filepath.Join(t.TempDir(), "large")
	ref := writeRandomFile(t, src, 5, size)
	sh(t, "cp "+src+" "+m.ref("large.bin"))
	sh(t, "cmp "+src+" "+m.ref(ref))
	rss := m.peakRSS()
	t.Logf("daemon peak RSS after writing and reading 3 GiB: %.1f MiB", float64(rss)/(1<<20))
	if rss > rssLimit {
		t.Fatalf("daemon peak RSS %d bytes, limit %d", rss, rssLimit)
	}
}

// TestMountStreamedWrites: a file written under its hex name is stored as
// it is written. Sparse copies (holes, a final ftruncate) work; writing
// back over what was stored fails with EIO and stores nothing; the same
// pattern under another name works.
func TestMountStreamedWrites(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse")
	sh(t, "truncate -s 5M "+sparse+" && printf 'middle' | dd of="+sparse+" bs=1 seek=3000000 conv=notrunc status=none")
	sparseRef := sha256Hex(must(os.ReadFile(sparse)))
	sh(t, "cp --sparse=always "+sparse+" "+m.ref(sparseRef))
	sh(t, "cmp "+sparse+" "+m.ref(sparseRef))

	content := []byte("written twice at the start\n")
	ref := sha256Hex(content)
	f, err := os.OpenFile(m.ref(ref), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(content, 0); err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(content[:5], 0)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("writing back over a streamed part: %v, want EIO", err)
	}
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("close after a failed stream: %v, want EIO", err)
	}
	if _, err := os.Stat(m.ref(ref)); !os.IsNotExist(err) {
		t.Fatalf("a file that failed to stream is still listed: %v", err)
	}

	// The same writes under another name are spooled, and fine.
	f, err = os.OpenFile(m.ref("patched.txt"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(content, 0)
	f.WriteAt(content[:5], 0)
	if err := f.Close(); err != nil {
		t.Fatalf("close of a spooled file written out of order: %v", err)
	}
	sh(t, "cmp "+m.ref("patched.txt")+" "+m.ref(ref))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestMountShellRedirection: the shell's `cat f > ref/<hex>` and `dd
// of=ref/<hex>` open the file and close a duplicate of the descriptor
// before anything is written; that close must not count as the file's
// end. Wrong content still fails, and touch of a hex name fails and
// stores nothing; touch of another name stores the empty blob.
func TestMountShellRedirection(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	dir := t.TempDir()
	viaShell := filepath.Join(dir, "shell")
	shellRef := writeRandomFile(t, viaShell, 21, 3<<20+5)
	viaDD := filepath.Join(dir, "dd")
	ddRef := writeRandomFile(t, viaDD, 22, 2<<20)

	sh(t, "cat "+viaShell+" > "+m.ref(shellRef))
	sh(t, "cmp "+viaShell+" "+m.ref(shellRef))
	sh(t, "cat "+viaShell+" > "+m.ref(shellRef)) // a rewrite of the same content
	sh(t, "cmp "+viaShell+" "+m.ref(shellRef))
	sh(t, "dd if="+viaDD+" of="+m.ref(ddRef)+" bs=1M status=none")
	sh(t, "cmp "+viaDD+" "+m.ref(ddRef))

	wrong := sha256Hex([]byte("not the content"))
	out := shFails(t, "cat "+viaDD+" > "+m.ref(wrong))
	if !strings.Contains(out, "Input/output error") {
		t.Fatalf("cat of wrong content into ref/<hex> printed %q, want an I/O error", out)
	}
	if _, err := os.Stat(m.ref(wrong)); !os.IsNotExist(err) {
		t.Fatalf("the wrong name is still there after the failed redirection: %v", err)
	}

	// Under another name the duplicate's close stores nothing either (not
	// even the empty blob); touch stores the empty blob once it is closed.
	emptyRef := sha256Hex(nil)
	sh(t, "cat "+viaShell+" > "+m.ref("named.txt"))
	sh(t, "cmp "+viaShell+" "+m.ref("named.txt"))
	if _, err := os.Stat(m.ref(emptyRef)); !os.IsNotExist(err) {
		t.Fatalf("a redirection into ref/named.txt stored the empty blob: %v", err)
	}
	sh(t, "touch "+m.ref("empty.txt"))
	waitFor(t, "the empty blob after touch ref/empty.txt", func() bool {
		info, err := os.Stat(m.ref(emptyRef))
		return err == nil && info.Size() == 0
	})

	// touch: nothing written does not hash to the name; the name goes.
	untouched := sha256Hex([]byte("never written"))
	out = shFails(t, "touch "+m.ref(untouched))
	if !strings.Contains(out, "Input/output error") {
		t.Fatalf("touch ref/<hex of something else> printed %q, want an I/O error", out)
	}
	waitFor(t, "ref/"+untouched+" to go after touch", func() bool {
		_, err := os.Stat(m.ref(untouched))
		return os.IsNotExist(err)
	})
	sh(t, "touch "+m.ref(emptyRef))
	if info, err := os.Stat(m.ref(emptyRef)); err != nil || info.Size() != 0 {
		t.Fatalf("touch of the empty blob's name: %v, %v", info, err)
	}

	// Writing on after the content was stored (the file's descriptor is
	// shared, and the first process to close it stores it): EPERM, and
	// the blob keeps its content.
	third := filepath.Join(dir, "third")
	thirdRef := writeRandomFile(t, third, 23, 1<<20)
	out = shFails(t, "{ cat "+third+"; /bin/echo more; } > "+m.ref(thirdRef))
	if !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("writing after the blob was stored printed %q, want EPERM", out)
	}
	sh(t, "cmp "+third+" "+m.ref(thirdRef))

	// fsync before anything is written stores nothing and checks nothing.
	small := []byte("fsynced first\n")
	f, err := os.OpenFile(m.ref(sha256Hex(small)), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync of ref/<hex> before writing: %v", err)
	}
	if _, err := f.Write(small); err != nil {
		t.Fatalf("write after fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after fsync and write: %v", err)
	}

	m.unmount()
	if volumes := s.mustRun("--json", "volume", "ls"); !strings.Contains(volumes, `"blob_count":5`) {
		t.Fatalf("want 5 blobs stored (shell and named.txt, dd, empty, third, fsynced): %s", volumes)
	}
}
