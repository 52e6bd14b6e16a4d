package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// copiesStatus is what stofuse status --json says of the copies policy
// and the volumes.
type copiesStatus struct {
	Copies struct {
		Blobs  int64 `json:"blobs"`
		Below  int64 `json:"below_policy"`
		Counts []struct {
			Name  string `json:"name"`
			Blobs int64  `json:"blobs"`
			Below int64  `json:"below_policy"`
		} `json:"collections"`
	} `json:"copies"`
	Replication *struct {
		Passes int `json:"passes"`
		Copied int `json:"copied"`
		Failed int `json:"failed"`
	} `json:"replication"`
	Volumes []struct {
		Label     string `json:"label"`
		BlobCount int64  `json:"blob_count"`
	} `json:"volumes"`
}

func (s *store) copiesStatus() copiesStatus {
	s.t.Helper()
	var st copiesStatus
	if err := json.Unmarshal([]byte(s.mustRun("--json", "status")), &st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// blobCounts is each volume's blob count, by label.
func (st copiesStatus) blobCounts() map[string]int64 {
	counts := map[string]int64{}
	for _, v := range st.Volumes {
		counts[v.Label] = v.BlobCount
	}
	return counts
}

// waitForPolicy waits until status shows every blob at its policy.
func (s *store) waitForPolicy(t *testing.T) copiesStatus {
	t.Helper()
	var st copiesStatus
	waitFor(t, "status to show no blob below its copies policy", func() bool {
		st = s.copiesStatus()
		return st.Copies.Blobs > 0 && st.Copies.Below == 0
	})
	return st
}

// readAroundAndRepair reads every file of dir (named in want, by its
// SHA-256) through the mount m, each of them damaged on one of the
// mounted volumes' copies or in different frames of both (both-different)
// but both-same, damaged in the same frame of both copies, which must be
// EIO; waits for the daemon to repair the two copies damaged in one place
// from volume other and the both-different one from the good frames of
// both; unmounts m.
func (s *store) readAroundAndRepair(t *testing.T, m *mount, dir string, want map[string]string, other string) {
	t.Helper()
	for name, sum := range want {
		if name == "both-same" {
			continue
		}
		if got := sh(t, "sha256sum < "+filepath.Join(dir, name)+" | cut -c1-64"); got != sum+"\n" {
			t.Errorf("cat of %s through the mount: SHA-256 %s, want %s", name, got, sum)
		}
	}
	if out := shFails(t, "cat "+filepath.Join(dir, "both-same")+" > /dev/null"); !strings.Contains(out, "both-same: Input/output error") {
		t.Errorf("cat of the file damaged in the same frame of both copies: %q, want Input/output error", out)
	}
	log := func() string {
		b, _ := os.ReadFile(filepath.Join(s.dir, "mount.log"))
		return string(b)
	}
	waitFor(t, "the daemon to repair the three blobs it read around", func() bool {
		return strings.Count(log(), "replaced with a verified copy from volume "+other) == 2 &&
			strings.Contains(log(), "blob "+want["both-different"]+": no copy was whole")
	})
	m.unmount()
}

// requireScrubNamesOnly runs scrub and fails unless the only blob of want
// it names is both-same's, once for each of its two damaged copies.
func (s *store) requireScrubNamesOnly(t *testing.T, want map[string]string) {
	t.Helper()
	out := s.run("scrub").stdout
	for name, sum := range want {
		if n := strings.Count(out, sum); name == "both-same" && n != 2 || name != "both-same" && n != 0 {
			t.Errorf("scrub after the repairs names %s %d times:\n%s", name, n, out)
		}
	}
}

// TestCopiesPolicy: two local volumes, the collection's policy 2 copies; a
// tree copied into files/ and blobs written into ref/ of a mount reach two
// copies each on their own (status reaches 0 below policy, both volumes
// hold every blob). Then, remounted, with copies damaged: a file whose
// mounted copy has a damaged frame, one whose copy is gone, and one
// damaged in a different frame of each copy read back right through
// cat; one damaged in the same frame of both copies is EIO, and only it;
// the daemon repairs the others and scrub finds both volumes clean but
// for that one.
func TestCopiesPolicy(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	backup := filepath.Join(t.TempDir(), "backup")
	s.mustRun("volume", "add", "backup", "--path", backup)
	r := s.run("collection", "set", "default", "--copies", "2")
	if r.code != 0 || r.stdout != "collection default: 2 copies\n" ||
		!strings.Contains(r.stderr, "nothing is mounted: `stofuse replicate --policy` makes the copies") {
		t.Fatalf("collection set: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	if out := s.mustRun("collection", "ls"); !strings.Contains(out, "default              2 copies") {
		t.Errorf("collection ls:\n%s", out)
	}

	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"frame", "gone", "both-different", "both-same", "intact", "sub/small"}
	want := map[string]string{}
	for i, name := range names {
		size := int64(5<<17 + 777) // 6 frames
		if name == "sub/small" {
			size = 1000
		}
		want[name] = writeRandomFile(t, filepath.Join(src, name), uint64(300+i), size)
	}
	m := s.mount()
	sh(t, "cp -a "+src+" "+filepath.Join(m.dir, "files", "default", "src"))
	refDir := t.TempDir()
	explicit := writeHashNamed(t, refDir, 5, 77)
	sh(t, "cp "+refDir+"/* "+filepath.Join(m.dir, "ref")+"/")
	st := s.waitForPolicy(t)
	counts := st.blobCounts()
	if counts["default"] != counts["backup"] || counts["backup"] < int64(len(names)+len(explicit)) {
		t.Errorf("blob counts %v: want the backup volume to hold every blob of the default one (at least %d)", counts, len(names)+len(explicit))
	}
	if st.Replication == nil || st.Replication.Copied < len(names)+len(explicit) || st.Replication.Failed != 0 {
		t.Errorf("status of the replication: %+v, want %d copies or more, none failed", st.Replication, len(names)+len(explicit))
	}
	if out := s.mustRun("status"); !strings.Contains(out, fmt.Sprintf("copies:   0 of %d blobs below their policy", st.Copies.Blobs)) {
		t.Errorf("status:\n%s", out)
	}
	m.unmount()
	for _, v := range []string{"default", "backup"} {
		s.requireScrubClean(v)
	}

	volume := filepath.Join(s.dir, "volumes", "default")
	flipFrame(t, copyPath(volume, want["frame"]), 2)
	if err := os.Remove(copyPath(volume, want["gone"])); err != nil {
		t.Fatal(err)
	}
	flipFrame(t, copyPath(volume, want["both-different"]), 1)
	flipFrame(t, copyPath(backup, want["both-different"]), 4)
	flipFrame(t, copyPath(volume, want["both-same"]), 3)
	flipFrame(t, copyPath(backup, want["both-same"]), 3)
	m = s.mount()
	s.readAroundAndRepair(t, m, filepath.Join(m.dir, "files", "default", "src"), want, "backup")
	s.requireScrubNamesOnly(t, want)
}

// TestCopiesPolicyResumesAfterKill: a mount replicating slowly
// (--replicate-rate) is killed with SIGKILL halfway; the next mount goes
// on and reaches the policy, and both volumes scrub clean (a copy cut off
// was never recorded, and leaves no orphan).
func TestCopiesPolicyResumesAfterKill(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	s.mustRun("volume", "add", "backup", "--path", filepath.Join(t.TempDir(), "backup"))
	s.mustRun("collection", "set", "--default", "--copies", "2")
	m := s.mount("--replicate-rate", "4M")
	dir := filepath.Join(m.dir, "files", "default")
	want := map[string]string{}
	for i := range 24 {
		name := fmt.Sprintf("f%02d", i)
		want[name] = writeRandomFile(t, filepath.Join(dir, name), uint64(i), 1<<20)
	}
	waitFor(t, "some copies to be made", func() bool {
		st := s.copiesStatus()
		return st.Replication != nil && st.Replication.Copied >= 3
	})
	if st := s.copiesStatus(); st.Copies.Below == 0 {
		t.Fatalf("every blob is at its policy before the kill: the replication was not slowed down")
	}
	m.kill(t)
	m = s.mount()
	s.waitForPolicy(t)
	for name, sum := range want {
		if got := sh(t, "sha256sum < "+filepath.Join(m.dir, "files", "default", name)+" | cut -c1-64"); got != sum+"\n" {
			t.Errorf("%s after the kill: SHA-256 %s, want %s", name, got, sum)
		}
	}
	m.unmount()
	s.requireScrubClean("default")
	s.requireScrubClean("backup")
	if counts := s.copiesStatus().blobCounts(); counts["default"] != counts["backup"] {
		t.Errorf("blob counts after the resumed replication: %v", counts)
	}
}

// TestCopiesPolicyS3: a local volume and an S3 one; files written into
// the mount with one copy, then the policy set to 2 copies on both
// through the mount's daemon: the files reach the bucket on their own,
// and so does a file written after. Then, with copies damaged on either
// side, cat through the mount reads the right bytes of a file whose local
// copy has a damaged frame or is gone (from the bucket), and of one
// damaged in a different frame of each copy; one damaged in the same
// frame of both is EIO. The daemon repairs the others; a copy deleted
// from the bucket comes back with scrub --repair; then scrub names only
// the blob damaged on both sides.
func TestCopiesPolicyS3(t *testing.T) {
	requireFuse(t)
	s, srv := newS3Store(t)
	m := s.mount()
	dir := filepath.Join(m.dir, "files", "default")
	names := []string{"frame", "gone", "both-different", "both-same", "bucket-gone"}
	want := map[string]string{}
	for i, name := range names[:3] {
		want[name] = writeRandomFile(t, filepath.Join(dir, name), uint64(50+i), 3<<17+5)
	}
	if out := s.mustRun("collection", "set", "default", "--copies", "2", "--volumes", "default,s3vol"); out != "collection default: 2 copies on default, s3vol\n" {
		t.Errorf("collection set through the daemon: %q", out)
	}
	s.waitForPolicy(t)
	for i, name := range names[3:] {
		want[name] = writeRandomFile(t, filepath.Join(dir, name), uint64(60+i), 3<<17+5)
	}
	st := s.waitForPolicy(t)
	if counts := st.blobCounts(); counts["s3vol"] != counts["default"] {
		t.Errorf("blob counts %v: want the bucket to hold every blob", counts)
	}
	m.unmount()
	s.requireScrubClean("s3vol")

	local := filepath.Join(s.dir, "volumes", "default")
	object := func(name string) string { _, path := objectOf(t, srv, want[name]); return path }
	flipFrame(t, copyPath(local, want["frame"]), 1)
	if err := os.Remove(copyPath(local, want["gone"])); err != nil {
		t.Fatal(err)
	}
	flipFrame(t, copyPath(local, want["both-different"]), 0)
	flipFrame(t, object("both-different"), 2)
	flipFrame(t, copyPath(local, want["both-same"]), 1)
	flipFrame(t, object("both-same"), 1)
	if err := os.Remove(object("bucket-gone")); err != nil {
		t.Fatal(err)
	}
	m = s.mount()
	s.readAroundAndRepair(t, m, filepath.Join(m.dir, "files", "default"), want, "s3vol")
	if out := s.run("scrub", "--repair", "--volume", "s3vol").stdout; !strings.Contains(out, "REPAIRED "+want["bucket-gone"]+"  volume s3vol: missing copy restored from volume default") {
		t.Errorf("scrub --repair of the bucket:\n%s", out)
	}
	s.requireScrubNamesOnly(t, want)
}

// TestCopiesPolicySharedBlob: a blob that a file of a collection with one
// copy stored, and that a file of a collection with two copies then uses
// too (the same content, stored once), follows the larger policy and
// gets its second copy; a file only the first collection uses keeps one.
func TestCopiesPolicySharedBlob(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	s.mustRun("volume", "add", "backup", "--path", filepath.Join(t.TempDir(), "backup"))
	m := s.mount()
	files := filepath.Join(m.dir, "files")
	if err := os.Mkdir(filepath.Join(files, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.mustRun("collection", "set", "other", "--copies", "2")
	passes := func() int {
		if r := s.copiesStatus().Replication; r != nil {
			return r.Passes
		}
		return 0
	}
	waitFor(t, "the replication's whole pass", func() bool { return passes() >= 1 })
	before := passes()
	shared := writeRandomFile(t, filepath.Join(files, "default", "shared"), 1, 200_000)
	alone := writeRandomFile(t, filepath.Join(files, "default", "alone"), 2, 200_000)
	waitFor(t, "the replication's look at the new blobs", func() bool { return passes() > before })
	s.waitForPolicy(t)
	if got := s.volumesOf(shared); got != "default" {
		t.Fatalf("the blob only the collection with one copy uses is on %q", got)
	}
	sh(t, "cp "+filepath.Join(files, "default", "shared")+" "+filepath.Join(files, "other", "shared"))
	waitFor(t, "the shared blob to get its second copy", func() bool { return s.volumesOf(shared) == "default, backup" })
	if got := s.volumesOf(alone); got != "default" {
		t.Errorf("the blob of the collection with one copy is on %q, want default only", got)
	}
	st := s.waitForPolicy(t)
	for _, c := range st.Copies.Counts {
		if c.Name == "other" && c.Blobs < 1 {
			t.Errorf("status counts %d blobs for the collection other, want the shared one", c.Blobs)
		}
	}
	m.unmount()
}

// TestCopiesPolicyAtSIGTERM: a mount stopped by SIGTERM while it copies
// (slowly: --replicate-rate) finishes the copies under way and those of
// its last snapshot before the daemon exits: nothing is below policy
// after.
func TestCopiesPolicyAtSIGTERM(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	s.mustRun("volume", "add", "backup", "--path", filepath.Join(t.TempDir(), "backup"))
	s.mustRun("collection", "set", "--default", "--copies", "2")
	m := s.mount("--replicate-rate", "1M")
	want := writeRandomFile(t, filepath.Join(m.dir, "files", "default", "f"), 9, 2<<20) // 2 s at the rate
	waitFor(t, "the copy to start", func() bool {
		st := s.copiesStatus()
		return st.Replication != nil && st.Replication.Passes >= 1 && st.Copies.Below > 0
	})
	if err := syscall.Kill(m.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to exit", func() bool { return processGone(m.pid) })
	if got := s.volumesOf(want); got != "default, backup" {
		t.Errorf("the file being copied at SIGTERM is on %q, want default, backup", got)
	}
	if st := s.copiesStatus(); st.Copies.Below != 0 {
		t.Errorf("%d blobs below policy after the daemon stopped (the last snapshot's?)", st.Copies.Below)
	}
}
