package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// gcTree is a tree copied into files/ through a mount, part of it then
// deleted, and blobs stored explicitly beside it.
type gcTree struct {
	src      string
	kept     map[string]string // path under keep/ -> SHA-256
	dropped  []string          // refs of the files deleted (each used by nothing else)
	explicit map[string]string // refs put or written into ref/ -> source file
}

// makeGCTree copies into files/default a tree with keep/ and drop/ (drop
// has more files than gc removes in one batch), deletes drop/, puts one
// file and writes another into ref/, and unmounts.
func makeGCTree(t *testing.T, s *store, dropFiles int) *gcTree {
	t.Helper()
	g := &gcTree{src: t.TempDir(), kept: map[string]string{}, explicit: map[string]string{}}
	for i := range 12 {
		name := filepath.Join("keep", fmt.Sprint("sub", i%3), fmt.Sprint("f", i))
		if err := os.MkdirAll(filepath.Join(g.src, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		g.kept[name] = writeRandomFile(t, filepath.Join(g.src, name), uint64(100+i), int64(30_000*(i+1)))
	}
	if err := os.MkdirAll(filepath.Join(g.src, "drop", "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range dropFiles {
		g.dropped = append(g.dropped, writeRandomFile(t, filepath.Join(g.src, "drop", fmt.Sprint("d", i)), uint64(1000+i), 3000))
	}
	for i := range 3 {
		g.dropped = append(g.dropped, writeRandomFile(t, filepath.Join(g.src, "drop", "big", fmt.Sprint("b", i)), uint64(5000+i), 2<<20))
	}
	put := filepath.Join(t.TempDir(), "put")
	viaRef := filepath.Join(t.TempDir(), "via-ref")
	g.explicit[writeRandomFile(t, put, 7, 400_000)] = put
	g.explicit[writeRandomFile(t, viaRef, 8, 300_000)] = viaRef

	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	sh(t, "cp -a "+g.src+"/. "+files+"/")
	sh(t, "rm -r "+files+"/drop")
	s.mustRun("put", put)
	sh(t, "cp "+viaRef+" "+m.ref(sha256File(t, viaRef)))
	m.unmount()
	return g
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	return strings.Fields(sh(t, "sha256sum "+path))[0]
}

// checkReadBack checks through a fresh mount that every kept file reads
// back byte for byte (sha256sum -c), that every explicit store does
// (stofuse cat), and that scrub finds nothing.
func (g *gcTree) checkReadBack(t *testing.T, s *store) {
	t.Helper()
	m := s.mount()
	var sums strings.Builder
	for name, sum := range g.kept {
		fmt.Fprintf(&sums, "%s  %s\n", sum, filepath.Join(m.dir, "files", "default", name))
	}
	list := filepath.Join(t.TempDir(), "sums")
	if err := os.WriteFile(list, []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "sha256sum --quiet -c "+list)
	m.unmount()
	for ref := range g.explicit {
		if got := s.catSHA256(ref); got != ref {
			t.Errorf("stofuse cat %s: content hashes to %s", ref, got)
		}
	}
	s.requireScrubClean("default")
}

// onVolume counts the refs whose blob file is on the default volume.
func onVolume(s *store, refs []string) int {
	n := 0
	for _, ref := range refs {
		if _, err := os.Stat(filepath.Join(s.dir, "volumes", "default", ref[:3], ref)); err == nil {
			n++
		}
	}
	return n
}

// duBytes is du's apparent size, in bytes, of dir.
func duBytes(t *testing.T, dir string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.Fields(sh(t, "du -sb "+dir))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func gcCollect(t *testing.T, s *store) gcReport {
	t.Helper()
	var r gcReport
	out := s.mustRun("--json", "gc", "--grace", "0")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("gc --json: %v: %q", err, out)
	}
	return r
}

// TestGC: gc removes the deleted files' blobs and nothing else: every
// kept file and explicit store reads back, scrub is clean, the volume's
// du drops by what gc said it freed, and a second gc finds nothing.
func TestGC(t *testing.T) {
	s := newStore(t)
	g := makeGCTree(t, s, 300)
	volume := filepath.Join(s.dir, "volumes", "default")
	before := duBytes(t, volume)
	dry := gcDryRun(t, s, "0")

	text := s.mustRun("gc", "--grace", "0")
	if len(dry.Volumes) != 1 {
		t.Fatalf("gc --dry-run: %+v", dry)
	}
	want := fmt.Sprintf("volume default: %d blobs, ", dry.Volumes[0].Blobs)
	if !strings.HasPrefix(text, want) || !strings.Contains(text, " freed\n") || !strings.Contains(text, fmt.Sprintf("), %d garbage; removed %d blob copies, ", dry.Garbage, dry.Garbage)) {
		t.Errorf("gc said:\n%s\nwant it to begin %q, as the dry run said (%+v)", text, want, dry)
	}
	freed := dry.Volumes[0].Bytes
	after := duBytes(t, volume)
	t.Logf("gc freed %d blobs, %d bytes; du -sb of the volume %d -> %d", dry.Volumes[0].Blobs, freed, before, after)
	// du counts the shard directories too, which do not shrink.
	if drop := before - after; drop < freed || drop > freed+freed/100 {
		t.Errorf("du of the volume dropped by %d bytes (%d -> %d), gc said it freed %d", drop, before, after, freed)
	}
	if n := onVolume(s, g.dropped); n != 0 {
		t.Errorf("%d of the %d deleted files' blobs are still on the volume", n, len(g.dropped))
	}
	if dry.Garbage < int64(len(g.dropped)) {
		t.Errorf("gc found %d garbage, fewer than the %d deleted files", dry.Garbage, len(g.dropped))
	}
	g.checkReadBack(t, s)
	if again := gcCollect(t, s); again.Garbage != 0 || len(again.Freed) != 0 {
		t.Errorf("a second gc: %+v, want nothing to remove", again)
	}
}

// TestGCKilled: a gc killed with SIGKILL part way (stopped after 100
// removals by its test hook) leaves a store that the next command
// finishes: a put of two deleted files' contents, one of whose blobs the
// gc had removed and one not, finishes the collection as it opens and
// stores both again; everything reads back, scrub is clean, and a gc
// after removes nothing more and keeps both.
func TestGCKilled(t *testing.T) {
	s := newStore(t)
	g := makeGCTree(t, s, 300)
	dry := gcDryRun(t, s, "0")

	cmd := exec.Command(stofuseBin, "gc", "--grace", "0")
	cmd.Env = append(s.env, "STOFUSE_TEST_GC_PAUSE_AFTER=100")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() && !strings.Contains(lines.Text(), "paused after 100 removals") {
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	left := onVolume(s, g.dropped)
	t.Logf("killed after 100 removals: %d of the %d deleted files' blobs left on the volume", left, len(g.dropped))
	if left == 0 || left == len(g.dropped) {
		t.Fatalf("after the kill, %d of the %d deleted files' blobs are on the volume: want some removed, some not", left, len(g.dropped))
	}
	var removed, kept string
	for i, ref := range g.dropped[:300] {
		if onVolume(s, []string{ref}) == 0 {
			removed = filepath.Join(g.src, "drop", fmt.Sprint("d", i))
		} else {
			kept = filepath.Join(g.src, "drop", fmt.Sprint("d", i))
		}
	}
	if removed == "" || kept == "" {
		t.Fatalf("the small deleted files are all removed or all kept")
	}
	r := s.run("put", removed, kept)
	if r.code != 0 || !strings.Contains(r.stderr, "finished an interrupted garbage collection: removed ") {
		t.Fatalf("put after the kill: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, path := range []string{removed, kept} {
		g.explicit[sha256File(t, path)] = path
	}
	if n := onVolume(s, g.dropped); n != 2 {
		t.Errorf("after the put, %d of the deleted files' blobs are on the volume, want the 2 put again", n)
	}
	g.checkReadBack(t, s)
	again := gcCollect(t, s)
	if again.Garbage != 0 || again.Live.Explicit != 4 || len(again.Freed) != 0 {
		t.Errorf("gc after the kill: %+v, want nothing left and 4 explicit stores (before: %+v)", again, dry)
	}
	if n := onVolume(s, g.dropped); n != 2 {
		t.Errorf("after gc, %d of the deleted files' blobs are on the volume, want the 2 put again", n)
	}
	g.checkReadBack(t, s)
}

// TestGCS3: gc on an S3 volume removes the released blobs' objects and
// nothing else, also when it is killed part way (the next command, a
// keyless scrub, finishes it): the bucket's blob objects drop by the
// released ones, the rest reads back, scrub is clean.
func TestGCS3(t *testing.T) {
	s, srv := newS3Store(t)
	src := t.TempDir()
	var paths []string
	for i := range 12 {
		path := filepath.Join(src, fmt.Sprint("f", i))
		writeRandomFile(t, path, uint64(300+i), int64(10_000*(i+1)))
		paths = append(paths, path)
	}
	refs := s.putRefs(append([]string{"--volume", "s3vol"}, paths...)...)
	blobObjects := func() int {
		n := 0
		for key := range objectFiles(t, srv) {
			rest, ok := strings.CutPrefix(key, s3Prefix)
			if name := filepath.Base(rest); ok && len(name) == 64 && !strings.HasPrefix(rest, "objects/") && !strings.HasPrefix(rest, "hold/") {
				n++
			}
		}
		return n
	}
	before := blobObjects()
	var released []string
	for i, path := range paths {
		if i%2 == 0 {
			released = append(released, refs[path])
			s.mustRun("release", refs[path])
		}
	}

	cmd := exec.Command(stofuseBin, "gc", "--grace", "0")
	cmd.Env = append(s.env, "STOFUSE_TEST_GC_PAUSE_AFTER=2")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for lines := bufio.NewScanner(stderr); lines.Scan() && !strings.Contains(lines.Text(), "paused after 2 removals"); {
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if n := blobObjects(); n != before-2 {
		t.Fatalf("killed after 2 removals: %d blob objects, want %d", n, before-2)
	}
	r := s.run("scrub", "--volume", "s3vol")
	if r.code != 0 || !strings.Contains(r.stderr, "finished an interrupted garbage collection: removed 6 blob copies") ||
		!strings.Contains(r.stdout, " 0 damaged, 0 missing, 0 orphans, 0 errors") {
		t.Fatalf("scrub after the kill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := blobObjects(); n != before-len(released) {
		t.Errorf("%d blob objects after the gc was finished, want %d (%d before, %d released)", n, before-len(released), before, len(released))
	}
	for path, ref := range refs {
		released := slices.Contains(released, ref)
		if got := s.run("cat", ref); released != (got.code != 0) {
			t.Errorf("cat %s (%s, released %v): exit %d", ref, path, released, got.code)
		} else if !released && sha256Hex([]byte(got.stdout)) != ref {
			t.Errorf("cat %s: wrong content", ref)
		}
	}
	if again := gcCollect(t, s); again.Garbage != 0 || len(again.Freed) != 0 {
		t.Errorf("a second gc: %+v", again)
	}
	s.requireScrubClean("s3vol")
}
