package test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// makeTree writes dirs directories of files pseudo-random files each
// (3 to 60 KB) under root, from seed, and returns their SHA-256 by path
// relative to root.
func makeTree(t *testing.T, root string, seed uint64, dirs, files int) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprint("d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			name := filepath.Join(fmt.Sprint("d", d), fmt.Sprint("f", f))
			n := seed*1000 + uint64(d*files+f)
			sums[name] = writeRandomFile(t, filepath.Join(root, name), n, int64(3000+n%20*3000))
		}
	}
	return sums
}

// checkTree checks with sha256sum -c that every file of sums reads back
// byte for byte under dir.
func checkTree(t *testing.T, dir string, sums map[string]string) {
	t.Helper()
	var list strings.Builder
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&list, "%s  %s\n", sums[name], filepath.Join(dir, name))
	}
	path := filepath.Join(t.TempDir(), "sums")
	if err := os.WriteFile(path, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "sha256sum --quiet -c "+path)
}

// shErr runs a shell command line for a goroutine that may not fail the
// test itself: its error says what failed, with the output.
func shErr(cmdline string) error {
	out, err := exec.Command("sh", "-c", cmdline).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", cmdline, err, out)
	}
	return nil
}

// gcRace is a mount with writers running beside repeated gcs through
// its daemon.
type gcRace struct {
	t     *testing.T
	s     *store
	m     *mount
	files string
	src   string
	tree  map[string]string // the tree the writers copy, by path
	kept  []string          // the copies of the tree left in files/, under files
	blobs map[string]string // the blobs the writers store into ref/: ref -> source
	gcs   int               // gcs run while the writers ran
}

// run copies the tree into files/ again and again (each copy but the
// last deleted at once, so that its blobs are garbage until the next copy
// stores them again) and the blobs into ref/ (each released after, so
// that gc may remove it before the next round writes it again), while
// gc --grace 0 runs through the daemon until both are done; a last
// round leaves every blob an explicit store.
func (g *gcRace) run(rounds int, volumeArgs ...string) {
	t := g.t
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	done := make(chan struct{})
	var freed, kept int64
	wg.Add(2)
	go func() { // files/
		defer wg.Done()
		for i := range rounds {
			dst := filepath.Join(g.files, fmt.Sprint("copy", i))
			if err := shErr("cp -a " + g.src + "/. " + dst + "/"); err != nil {
				errs <- err
				return
			}
			if i < rounds-1 {
				if err := shErr("rm -r " + dst); err != nil {
					errs <- err
					return
				}
			} else {
				g.kept = append(g.kept, fmt.Sprint("copy", i))
			}
		}
	}()
	go func() { // ref/
		defer wg.Done()
		for i := range rounds + 1 {
			for ref, path := range g.blobs {
				if err := shErr("cp " + path + " " + g.m.ref(ref)); err != nil {
					errs <- err
					return
				}
				if i < rounds {
					if r := g.s.run("release", ref); r.code != 0 {
						errs <- fmt.Errorf("stofuse release %s: exit %d: %s", ref, r.code, r.stderr)
						return
					}
				}
			}
		}
	}()
	go func() {
		wg.Wait()
		close(done)
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		r := g.s.run(append([]string{"--json", "gc", "--grace", "0"}, volumeArgs...)...)
		var report gcReport
		if err := json.Unmarshal([]byte(r.stdout), &report); r.code != 0 || err != nil {
			t.Errorf("gc beside the writers: exit %d: %s%s", r.code, r.stdout, r.stderr)
			<-done
			break
		}
		g.gcs++
		for _, v := range report.Freed {
			freed += v.Blobs
		}
		kept += report.Kept
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d gcs ran beside %d rounds of writers, freed %d blob copies, found %d made live again", g.gcs, rounds, freed, kept)
}

// check reads back every copy of the tree left in files/ and every blob
// stored into ref/, byte for byte, through the mount.
func (g *gcRace) check() {
	for _, copy := range g.kept {
		checkTree(g.t, filepath.Join(g.m.dir, "files", "default", copy), g.tree)
	}
	sums := map[string]string{}
	for ref := range g.blobs {
		sums[ref] = ref
	}
	checkTree(g.t, filepath.Join(g.m.dir, "ref"), sums)
}

func newGCRace(t *testing.T, s *store, m *mount, seed uint64) *gcRace {
	g := &gcRace{t: t, s: s, m: m, files: filepath.Join(m.dir, "files", "default"), src: t.TempDir(), blobs: map[string]string{}}
	g.tree = makeTree(t, g.src, seed, 3, 15)
	blobDir := t.TempDir()
	for i := range 8 {
		path := filepath.Join(blobDir, fmt.Sprint("b", i))
		g.blobs[writeRandomFile(t, path, seed*100+uint64(i), int64(20_000*(i+1)))] = path
	}
	return g
}

// openUnlinked writes a file into files/ through the mount, opens it and
// removes it; it returns the open file and its content's SHA-256.
func openUnlinked(t *testing.T, files string, seed uint64) (*os.File, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "unlinked")
	sum := writeRandomFile(t, src, seed, 700_000)
	path := filepath.Join(files, "unlinked")
	sh(t, "cp "+src+" "+path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	return f, sum
}

// readAllFrom reads f from its start and returns its content's SHA-256.
func readAllFrom(t *testing.T, f *os.File) string {
	t.Helper()
	body, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
	if err != nil {
		t.Fatalf("reading the open, unlinked file: %v", err)
	}
	return sha256Hex(body)
}

// TestGCMounted: gc --grace 0 runs again and again through the mount's
// daemon while writers copy a tree into files/ (cp -a; each copy but
// the last deleted, so that its blobs are garbage that the next copy
// stores again) and blobs into ref/ (released after each round, so that gc
// removes them between rounds); a file opened and unlinked before keeps
// reading correctly. Afterwards every file and every explicit store reads
// back byte for byte, before and after a remount, and scrub is clean;
// then, with nothing else running, a gc frees what du of the volume
// drops by, the open unlinked file's blob once it is closed, and a blob
// it removes leaves ref/ at once (the kernel's cached entry dropped).
func TestGCMounted(t *testing.T) {
	s := newStore(t)
	m := s.mount("--snapshot-interval", "0")
	g := newGCRace(t, s, m, 41)
	unlinked, unlinkedSum := openUnlinked(t, g.files, 42)

	g.run(6)
	g.check()
	if got := readAllFrom(t, unlinked); got != unlinkedSum {
		t.Fatalf("the open, unlinked file reads as %s after the gcs, want %s", got, unlinkedSum)
	}
	if onVolume(s, []string{unlinkedSum}) != 1 {
		t.Errorf("the open, unlinked file's blob %s is not on the volume any more", unlinkedSum)
	}
	if r := gcDryRun(t, s, "0"); r.Garbage != 0 || r.Live.Held != 1 {
		t.Errorf("gc --dry-run after the writers: %+v, want no garbage and the unlinked file's blob held", r)
	}
	unlinked.Close()

	// A blob stored into ref/ and looked up (the kernel caches its entry
	// for an hour), then released: gc removes it, and ref/ no longer has
	// it, in a listing or a lookup.
	gone := filepath.Join(t.TempDir(), "gone")
	goneRef := writeRandomFile(t, gone, 43, 50_000)
	sh(t, "cp "+gone+" "+m.ref(goneRef)+" && stat "+m.ref(goneRef)+" >/dev/null && ls "+filepath.Join(m.dir, "ref")+" >/dev/null")
	s.mustRun("release", goneRef)
	// A tree of its own, copied in and deleted: what du must drop by.
	uniq := filepath.Join(t.TempDir(), "uniq")
	makeTree(t, uniq, 44, 2, 20)
	sh(t, "cp -a "+uniq+" "+filepath.Join(g.files, "uniq")+" && rm -r "+filepath.Join(g.files, "uniq"))
	volume := filepath.Join(s.dir, "volumes", "default")
	before := duBytes(t, volume)
	r := gcCollect(t, s)
	after := duBytes(t, volume)
	if r.Garbage != 40+1+1 || len(r.Freed) != 1 || r.Freed[0].Blobs != r.Garbage {
		t.Fatalf("the last gc: %+v, want the 40 deleted files, the released blob and the unlinked file freed", r)
	}
	freed := r.Freed[0].Bytes
	t.Logf("the last gc freed %d blobs, %d bytes; du -sb of the volume %d -> %d", r.Freed[0].Blobs, freed, before, after)
	if drop := before - after; drop < freed || drop > freed+freed/100 {
		t.Errorf("du of the volume dropped by %d bytes (%d -> %d), gc said it freed %d", drop, before, after, freed)
	}
	if _, err := os.Stat(m.ref(goneRef)); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat ref/%s after gc removed it: %v, want ENOENT", goneRef, err)
	}
	if listing := sh(t, "ls "+filepath.Join(m.dir, "ref")); strings.Contains(listing, goneRef) {
		t.Errorf("ls ref/ after gc lists the blob it removed, %s", goneRef)
	}
	g.check()
	m.unmount()
	s.requireScrubClean("default")
	g.m = s.mount()
	g.check()
}

// TestGCMountedS3: the same writers and gcs through the daemon of a mount
// of an S3 volume; afterwards everything reads back, scrub is clean, and
// a gc of a tree copied in and deleted takes the bucket's blob objects
// down by the blobs it says it freed.
func TestGCMountedS3(t *testing.T) {
	s, srv := newS3Store(t)
	m := s.mount("--volume", "s3vol", "--snapshot-interval", "0")
	g := newGCRace(t, s, m, 51)
	g.run(3)
	g.check()

	blobObjects := func() int64 {
		var n int64
		for key := range objectFiles(t, srv) {
			rest, ok := strings.CutPrefix(key, s3Prefix)
			if name := filepath.Base(rest); ok && len(name) == 64 && !strings.HasPrefix(rest, "objects/") && !strings.HasPrefix(rest, "hold/") {
				n++
			}
		}
		return n
	}
	uniq := filepath.Join(t.TempDir(), "uniq")
	makeTree(t, uniq, 52, 2, 10)
	sh(t, "cp -a "+uniq+" "+filepath.Join(g.files, "uniq")+" && rm -r "+filepath.Join(g.files, "uniq"))
	before := blobObjects()
	r := gcCollect(t, s)
	after := blobObjects()
	if r.Garbage != 20 || len(r.Freed) != 1 || r.Freed[0].Volume != "s3vol" || r.Freed[0].Blobs != 20 || before-after != 20 {
		t.Errorf("gc of 20 deleted files on S3: %+v; blob objects %d -> %d", r, before, after)
	}
	g.check()
	m.unmount()
	s.requireScrubClean("s3vol")
}

// TestGCMountedKilled: the mount's daemon is killed with SIGKILL while a
// gc it runs is part way (stopped after 100 removals by its test hook);
// the remount finishes the collection as it opens, everything reads back,
// scrub is clean, and a gc through the new daemon finds nothing more.
func TestGCMountedKilled(t *testing.T) {
	s := newStore(t)
	g := makeGCTree(t, s, 300)
	m := s.mount()

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
	if err := syscall.Kill(m.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed daemon to exit", func() bool { return processGone(m.pid) })
	exec.Command("umount", "-l", m.dir).Run() // the dead mount
	cmd.Wait()                                // the client: the daemon went away
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("the gc client whose daemon was killed: exit %d, want 1", code)
	}
	left := onVolume(s, g.dropped)
	t.Logf("daemon killed after 100 removals: %d of the %d deleted files' blobs left on the volume", left, len(g.dropped))
	if left == 0 || left == len(g.dropped) {
		t.Fatalf("after the kill, %d of the %d deleted files' blobs are on the volume: want some removed, some not", left, len(g.dropped))
	}

	m = s.mount()
	logged := string(must(os.ReadFile(filepath.Join(s.dir, "mount.log"))))
	if !strings.Contains(logged, "finished an interrupted garbage collection: removed ") {
		t.Errorf("the remount's log does not say it finished the gc:\n%s", logged)
	}
	if n := onVolume(s, g.dropped); n != 0 {
		t.Errorf("after the remount, %d of the deleted files' blobs are on the volume", n)
	}
	if again := gcCollect(t, s); again.Garbage != 0 || len(again.Freed) != 0 || again.Live.Explicit != 2 {
		t.Errorf("gc through the new daemon: %+v, want nothing to remove and the 2 explicit stores", again)
	}
	m.unmount()
	g.checkReadBack(t, s)
}
