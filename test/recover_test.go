package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inodes lists every path under dir with its inode number, size and
// mtime, as find sees them.
func inodes(t *testing.T, dir string) string {
	return sh(t, "cd "+dir+" && find . -mindepth 1 -printf '%i %n %s %T@ %p\\n' | sort -k5")
}

// latestRoot snapshots the store and returns the newest root tree ref.
func latestRoot(t *testing.T, s *store) string {
	t.Helper()
	var last struct {
		Root string `json:"root"`
	}
	for _, line := range strings.Split(strings.TrimSpace(s.mustRun("--json", "snapshot")), "\n") {
		if err := json.Unmarshal([]byte(line), &last); err != nil {
			t.Fatalf("snapshot --json: %v: %q", err, line)
		}
	}
	return last.Root
}

// TestRecoverFromTheVolume: with meta/ gone, the store is rebuilt from its
// volume and key: the same files with the same contents, times, link
// counts and inode numbers (a second rsync transfers nothing), a clean scrub; a wrong key
// is refused before anything is written; a damaged newest snapshot is
// named and the one before is used.
func TestRecoverFromTheVolume(t *testing.T) {
	src := filepath.Join(goSource(t), "encoding")
	s := newStore(t)
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	sh(t, "cp -a "+src+" "+files+"/tree && echo one > "+files+"/late")
	older := latestRoot(t, s)
	sh(t, "echo two > "+files+"/late && rm -r "+files+"/tree/json")
	newest := latestRoot(t, s)
	// The copies are made from a read-only mount after the unmount, which
	// snapshots anything that changed after the last snapshot (a release
	// the kernel sends late): what was taken is what comes back.
	m.unmount()
	m = s.mount("--read-only")
	files = filepath.Join(m.dir, "files", "default")
	backup := t.TempDir()
	sh(t, "rsync -a "+m.dir+"/files/ "+backup+"/files/ && rsync -a "+m.dir+"/ref/ "+backup+"/ref/")
	before := inodes(t, files)
	m.unmount()

	meta := filepath.Join(s.dir, "meta")
	volume := filepath.Join(s.dir, "volumes", "default")
	if err := os.RemoveAll(meta); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	s.mustRun("key", "generate", other)
	if r := s.run("--key-file", other, "recover", "--from", volume); r.code != 2 || !strings.Contains(r.stderr, "does not open the store on volume") {
		t.Fatalf("recover with another key: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(meta); !os.IsNotExist(err) {
		t.Fatalf("recover with a wrong key left %s behind: %v", meta, err)
	}

	out := s.mustRun("recover", "--from", volume)
	if !strings.Contains(out, "collection default: ") || !strings.Contains(out, " 0 unusable") {
		t.Fatalf("recover said:\n%s", out)
	}
	m = s.mount()
	files = filepath.Join(m.dir, "files", "default")
	sh(t, "diff -r "+backup+"/files/default "+files)
	if after := inodes(t, files); after != before {
		t.Errorf("inode numbers, link counts, sizes or times differ after the recovery:\n%s", firstDifference(strings.Split(after, "\n"), strings.Split(before, "\n")))
	}
	if n := rsyncTransferred(t, m.dir+"/files", backup+"/files"); n != "0" {
		t.Errorf("rsync of files/ after the recovery transferred %s files, want 0", n)
	}
	if n := rsyncTransferred(t, m.dir+"/ref", backup+"/ref"); n != "0" {
		t.Errorf("rsync of ref/ after the recovery transferred %s files, want 0", n)
	}
	m.unmount()
	if r := s.run("scrub"); r.code != 0 || !strings.Contains(r.stdout, " 0 damaged, 0 missing, 0 orphans") {
		t.Fatalf("scrub after the recovery: exit %d\n%s", r.code, r.stdout)
	}
	if r := s.run("recover", "--from", volume); r.code != 2 || !strings.Contains(r.stderr, "holds a working store") {
		t.Fatalf("recover over a working store: exit %d: %s", r.code, r.stderr)
	}

	// The newest snapshot's root tree is damaged: recover into another
	// store says so, uses the snapshot before, and exits 1.
	flipByte(t, filepath.Join(volume, newest[:3], newest), 100)
	elsewhere := &store{t: t, dir: filepath.Join(t.TempDir(), "elsewhere"), env: s.env}
	elsewhere.env = append(append([]string{}, s.env...), "STOFUSE_STORE="+elsewhere.dir, "STOFUSE_KEY_FILE="+filepath.Join(s.dir, "key"))
	r := elsewhere.run("recover", "--from", volume)
	if r.code != 1 || !strings.Contains(r.stdout, "newer snapshot not used") || !strings.Contains(r.stdout, newest) {
		t.Fatalf("recover with a damaged newest snapshot: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	m = elsewhere.mount()
	got := sh(t, "cat "+filepath.Join(m.dir, "files", "default", "late"))
	if got != "one\n" {
		t.Errorf("after falling back to the older snapshot (root %s), late holds %q, want its older content", older, got)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "files", "default", "tree", "json")); err != nil {
		t.Errorf("the older snapshot's tree/json is not back: %v", err)
	}
}

// TestRecoverFromS3: a store whose tree lives on an S3 volume is rebuilt,
// in another store directory, from the bucket and the key alone.
func TestRecoverFromS3(t *testing.T) {
	requireFuse(t)
	s, srv := newS3Store(t)
	src := filepath.Join(goSource(t), "encoding")
	m := s.mount("--volume", "s3vol")
	sh(t, "cp -a "+src+" "+filepath.Join(m.dir, "files", "default", "tree"))
	m.unmount() // snapshots what changed, on the mounted volume
	if out := s.mustRun("snapshot", "ls", "--volume", "s3vol"); strings.Count(out, "\n") != 1 {
		t.Fatalf("snapshots on the S3 volume after the unmount:\n%s", out)
	}

	other := &store{t: t, dir: filepath.Join(t.TempDir(), "other")}
	other.env = append(append([]string{}, s.env...), "STOFUSE_STORE="+other.dir, "STOFUSE_KEY_FILE="+filepath.Join(s.dir, "key"))
	out := other.mustRun("recover", "--from-s3-endpoint", srv.Endpoint(), "--from-s3-bucket", s3Bucket, "--from-s3-prefix", s3Prefix)
	if !strings.Contains(out, "collection default: ") || !strings.Contains(out, " 0 unusable") {
		t.Fatalf("recover from S3 said:\n%s", out)
	}
	m = other.mount()
	sh(t, "diff -r "+src+" "+filepath.Join(m.dir, "files", "default", "tree"))
	m.unmount()
	other.requireScrubClean("default")
}
