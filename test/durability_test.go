package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncCommand: `stofuse sync` commits with or without a mount (through
// the daemon when mounted), and fsync(2) of a file and of a directory in
// the mount succeed.
func TestSyncCommand(t *testing.T) {
	s := newStore(t)
	if out := s.mustRun("sync"); !strings.HasPrefix(out, "synced "+s.dir) {
		t.Fatalf("stofuse sync without a mount printed %q", out)
	}
	m := s.mount("--commit-interval", "1h")
	dir := t.TempDir()
	writeRandomFile(t, filepath.Join(dir, "a"), 71, 700_000)
	target := filepath.Join(m.dir, "files", "default", "a")
	sh(t, "cp "+filepath.Join(dir, "a")+" "+target)
	if out := s.mustRun("sync"); !strings.HasPrefix(out, "synced "+s.dir) {
		t.Fatalf("stofuse sync through the daemon printed %q", out)
	}
	for _, path := range []string{target, filepath.Dir(target), filepath.Join(m.dir, "ref")} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Errorf("fsync of %s: %v", path, err)
		}
		f.Close()
	}
	if r := s.run("sync", "extra"); r.code != 2 {
		t.Fatalf("stofuse sync with an argument: exit %d, want 2 (usage)", r.code)
	}
}

// TestKillBeforeAnyCommit: with a commit interval longer than the test,
// files closed in ref/ and files/ were never group-committed when the
// daemon is killed with SIGKILL; they are all there after a remount (the
// kernel kept what the daemon wrote), and the store scrubs clean.
func TestKillBeforeAnyCommit(t *testing.T) {
	s := newStore(t)
	m := s.mount("--commit-interval", "1h")
	src := t.TempDir()
	var refs []string
	for i := range 5 {
		name := filepath.Join(src, "f"+string(rune('0'+i)))
		refs = append(refs, writeRandomFile(t, name, uint64(80+i), int64(100_000*(i+1))))
	}
	sh(t, "cp -r "+src+" "+filepath.Join(m.dir, "files", "default", "copied"))
	sh(t, "cp "+filepath.Join(src, "f0")+" "+m.ref(refs[0]))
	m.kill(t)

	m = s.mount()
	// The remount found the journal of what no commit covered, checked
	// those blobs, and kept everything (the kernel had it all).
	logged := string(must(os.ReadFile(filepath.Join(s.dir, "mount.log"))))
	if !strings.Contains(logged, "after an unclean stop: checked ") || !strings.Contains(logged, ", 0 lost;") {
		t.Fatalf("the remount's log does not report the unclean stop and its check:\n%s", logged)
	}
	for i, ref := range refs {
		name := "f" + string(rune('0'+i))
		sh(t, "cmp "+filepath.Join(src, name)+" "+filepath.Join(m.dir, "files", "default", "copied", name))
		sh(t, "cmp "+filepath.Join(src, name)+" "+m.ref(ref))
	}
	m.unmount()
	if out := s.mustRun("scrub"); !strings.Contains(out, "0 damaged") {
		t.Fatalf("scrub after the kill:\n%s", out)
	}
}

// TestSyncOnClose: a mount with --sync-on-close stores and reads back as
// any other.
func TestSyncOnClose(t *testing.T) {
	s := newStore(t)
	if r := s.run("mount", "--commit-interval", "0", t.TempDir()); r.code != 2 || !strings.Contains(r.stderr, "--commit-interval") {
		t.Fatalf("mount --commit-interval 0: exit %d, %q; want 2 (usage)", r.code, r.stderr)
	}
	m := s.mount("--sync-on-close")
	dir := t.TempDir()
	ref := writeRandomFile(t, filepath.Join(dir, "a"), 90, 300_000)
	sh(t, "cp "+filepath.Join(dir, "a")+" "+filepath.Join(m.dir, "files", "default", "a"))
	sh(t, "cp "+filepath.Join(dir, "a")+" "+m.ref(ref))
	sh(t, "cmp "+filepath.Join(dir, "a")+" "+filepath.Join(m.dir, "files", "default", "a"))
}
