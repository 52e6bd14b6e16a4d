package test

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"
)

// posixNotApplicable are the posixtest cases that test what files/ does
// not offer, by design (README, "The files/ tree").
var posixNotApplicable = map[string]string{
	"Link":                "hard links are refused (EPERM): a name is one inode",
	"LinkUnlinkRename":    "uses hard links",
	"FcntlFlockLocksFile": "file locks are not forwarded (the mount does not enable them)",
	"FcntlFlockSetLk":     "file locks are not forwarded",
	"XAttr":               "user extended attributes are not kept (only user.stofuse.*)",
	"XAttrLarge":          "user extended attributes are not kept",
}

// TestFilesPosix runs go-fuse's posixtest suite against files/, each case
// in a fresh directory of a collection.
func TestFilesPosix(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixNotApplicable[name]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(m.dir, "files", "default", name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}
}

// TestFilesSemantics: collections are folders with their own key; a file's
// content is a blob (user.stofuse.ref, the same bytes under ref/);
// identical files share one; changing a file copies it; deleting keeps the
// blob; the rules the README states for rmdir, rename and hard links.
func TestFilesSemantics(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	photos := filepath.Join(m.dir, "files", "photos")
	def := filepath.Join(m.dir, "files", "default")
	sh(t, "mkdir "+photos)
	if out := sh(t, "ls "+filepath.Join(m.dir, "files")); out != "default\nphotos\n" {
		t.Fatalf("files/ lists %q", out)
	}
	os.WriteFile(filepath.Join(photos, "a.jpg"), []byte("same bytes"), 0o644)
	os.WriteFile(filepath.Join(photos, "b.jpg"), []byte("same bytes"), 0o644)
	refA, refB := xattr(t, filepath.Join(photos, "a.jpg"), "user.stofuse.ref"), xattr(t, filepath.Join(photos, "b.jpg"), "user.stofuse.ref")
	if refA != sha256Hex([]byte("same bytes")) || refA != refB {
		t.Fatalf("refs of identical files: %s and %s", refA, refB)
	}
	sh(t, "cmp "+filepath.Join(photos, "a.jpg")+" "+m.ref(refA))

	// Changing a file stores a new blob; the old one stays readable.
	sh(t, "printf 'new bytes' > "+filepath.Join(photos, "a.jpg"))
	if got := xattr(t, filepath.Join(photos, "a.jpg"), "user.stofuse.ref"); got != sha256Hex([]byte("new bytes")) {
		t.Fatalf("after rewriting a.jpg its ref is %s", got)
	}
	sh(t, "cmp "+filepath.Join(photos, "b.jpg")+" "+m.ref(refA))
	sh(t, "rm "+filepath.Join(photos, "b.jpg"))
	if got := sh(t, "cat "+m.ref(refA)); got != "same bytes" {
		t.Fatalf("the blob of a deleted file reads %q", got)
	}

	if out := shFails(t, "rmdir "+photos); !strings.Contains(out, "Directory not empty") {
		t.Fatalf("rmdir of a non-empty collection: %q", out)
	}
	sh(t, "ln "+filepath.Join(photos, "a.jpg")+" "+filepath.Join(photos, "hard")) // hard links: TestHardLinks
	if got := sh(t, "stat -c %h "+filepath.Join(photos, "a.jpg")); got != "2\n" {
		t.Fatalf("a file with a hard link has %s links", got)
	}
	sh(t, "rm "+filepath.Join(photos, "hard"))
	if out := shFails(t, "touch "+filepath.Join(m.dir, "files", "loose")); !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("a file directly in files/: %q", out)
	}
	// A file first stored in default is sealed with default's key; a file
	// moved there from photos keeps its blob, sealed with photos' key.
	os.WriteFile(filepath.Join(def, "d.txt"), []byte("default bytes"), 0o644)
	sh(t, "mv "+filepath.Join(photos, "a.jpg")+" "+filepath.Join(def, "a.jpg"))
	sh(t, "printf 'written after the move' >> "+filepath.Join(def, "a.jpg"))
	sh(t, "ln -s a.jpg "+filepath.Join(def, "link")+" && test \"$(readlink "+filepath.Join(def, "link")+")\" = a.jpg")
	sh(t, "df "+def)

	var before unix.Stat_t
	unix.Stat(filepath.Join(def, "a.jpg"), &before)
	m.unmount()
	photosKey := keyOf(t, s, sha256Hex([]byte("same bytes")))
	defaultKey := keyOf(t, s, sha256Hex([]byte("default bytes")))
	if photosKey == defaultKey || keyOf(t, s, sha256Hex([]byte("new bytes"))) != photosKey {
		t.Fatalf("collection keys: photos %s, default %s", photosKey, defaultKey)
	}
	if got := keyOf(t, s, sha256Hex([]byte("new byteswritten after the move"))); got != defaultKey {
		t.Fatalf("content written after moving into default is sealed with %s, not default's %s", got, defaultKey)
	}
	if out := s.mustRun("stat", sha256Hex([]byte("same bytes"))); !strings.Contains(out, "files:       0 (no file under files/ uses it") {
		t.Fatalf("stat of a blob no file uses:\n%s", out)
	}
	// The collection made with mkdir is a collection for the CLI too.
	src := filepath.Join(t.TempDir(), "x")
	os.WriteFile(src, []byte("x"), 0o644)
	s.mustRun("put", "--collection", "photos", src)

	m = s.mount()
	var after unix.Stat_t
	if err := unix.Stat(filepath.Join(m.dir, "files", "default", "a.jpg"), &after); err != nil {
		t.Fatal(err)
	}
	if before.Ino != after.Ino || before.Mtim != after.Mtim || before.Size != after.Size {
		t.Fatalf("attributes changed across a remount: %+v then %+v", before, after)
	}
}

// keyOf is the key id a blob is sealed with.
func keyOf(t *testing.T, s *store, ref string) string {
	t.Helper()
	for _, line := range strings.Split(s.mustRun("stat", ref), "\n") {
		if key, ok := strings.CutPrefix(line, "key:"); ok {
			return strings.TrimSpace(key)
		}
	}
	t.Fatalf("no key in stat of %s", ref)
	return ""
}

func xattr(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", path, name, err)
	}
	return string(buf[:n])
}

// TestFilesDamagedBlob: a file whose blob is damaged reads as EIO.
func TestFilesDamagedBlob(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	path := filepath.Join(m.dir, "files", "default", "f")
	ref := writeRandomFile(t, path, 11, 1<<20)
	m.unmount()
	stored := filepath.Join(s.dir, "volumes", "default", ref[:3], ref)
	f, _ := os.OpenFile(stored, os.O_RDWR, 0)
	f.WriteAt([]byte{0xee}, 300_000)
	f.Close()
	m = s.mount()
	if out := shFails(t, "cat "+filepath.Join(m.dir, "files", "default", "f")+" >/dev/null"); !strings.Contains(out, "Input/output error") {
		t.Fatalf("reading a file whose blob is damaged: %q", out)
	}
}

// signalledWriterEnv makes the test binary a writer for
// TestSignalsDoNotFailClose instead of running tests.
const signalledWriterEnv = "STOFUSE_TEST_SIGNALLED_WRITER"

// signalledWriter writes files into dir while every one of its threads
// keeps getting a signal it handles (as Go's runtime preempts with
// SIGURG), so that its FUSE requests are interrupted; it fails at the first
// error.
func signalledWriter(dir string) int {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1)
	go func() {
		pid := os.Getpid()
		for {
			tasks, _ := os.ReadDir("/proc/self/task")
			for _, task := range tasks {
				var tid int
				fmt.Sscan(task.Name(), &tid)
				syscall.Tgkill(pid, tid, syscall.SIGUSR1)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	data := make([]byte, 300_000)
	for i := range 60 {
		data[0] = byte(i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// TestSignalsDoNotFailClose: a process that gets signals while its files
// are stored (every Go program does: SIGURG) sees no EINTR from close.
func TestSignalsDoNotFailClose(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	tree := filepath.Join(m.dir, "files", "default", "signalled")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{tree, m.ref("")} {
		writer := exec.Command(os.Args[0])
		writer.Env = append(os.Environ(), signalledWriterEnv+"="+dir)
		if out, err := writer.CombinedOutput(); err != nil {
			t.Fatalf("a writer taking signals, into %s, failed: %v: %s", dir, err, out)
		}
	}
}

// TestFilesAttributesSetWhileWriting: mode, owner and times set on a file
// while it is being written (tar does all three before close) show at once
// and are stored with its content; set after close, they are stored at
// once. Both survive a remount.
func TestFilesAttributesSetWhileWriting(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	path := func() string { return filepath.Join(m.dir, "files", "default", "extracted") }
	remount := func() {
		m.unmount()
		m = s.mount()
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	setWhileWriting := func(f *os.File, content string, uid, gid int, mode os.FileMode) {
		t.Helper()
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		tv := unix.NsecToTimeval(mtime.UnixNano())
		if err := unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv}); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := f.Chown(uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Chmod(mode); err != nil {
			t.Fatal(err)
		}
	}
	want := func(when string, mode os.FileMode, uid, gid uint32, mtime time.Time, content string) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(path(), &st); err != nil {
			t.Fatal(err)
		}
		got := time.Unix(st.Mtim.Unix()).UTC()
		if os.FileMode(st.Mode&0o7777) != mode || st.Uid != uid || st.Gid != gid || !got.Equal(mtime) || st.Size != int64(len(content)) {
			t.Fatalf("%s: mode %o, owner %d:%d, mtime %v, size %d; want %o, %d:%d, %v, %d",
				when, st.Mode&0o7777, st.Uid, st.Gid, got, st.Size, mode, uid, gid, mtime, len(content))
		}
		if got := sh(t, "cat "+path()); got != content {
			t.Fatalf("%s: content %q, want %q", when, got, content)
		}
	}

	// A new file: held, and stored with the content.
	f, err := os.OpenFile(path(), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	setWhileWriting(f, "content\n", 1234, 5678, 0o751)
	want("while writing", 0o751, 1234, 5678, mtime, "content\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want("after close", 0o751, 1234, 5678, mtime, "content\n")
	remount()
	want("after a remount", 0o751, 1234, 5678, mtime, "content\n")

	// Set after close: stored at once.
	later := mtime.Add(time.Hour)
	sh(t, "chmod 640 "+path()+" && chown 42:43 "+path()+" && touch -d @"+strconv.FormatInt(later.Unix(), 10)+" "+path())
	remount()
	want("set after close, after a remount", 0o640, 42, 43, later, "content\n")

	// Rewriting a file that has content: set at once, and the time set
	// before close is the one the commit keeps (cp -p onto a file).
	f, err = os.OpenFile(path(), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	setWhileWriting(f, "CONTENT\n", -1, -1, 0o600)
	want("rewriting", 0o600, 42, 43, mtime, "CONTENT\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	remount()
	want("rewritten, after a remount", 0o600, 42, 43, mtime, "CONTENT\n")
}
