package test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFullStoreFilesystem: the store's own filesystem (a tmpfs of
// 320 MiB holding the store, and the default volume) filled from outside
// with dd while writers run in files/ and ref/, at several fill levels
// and timings: the daemon never dies (no SIGBUS in Badger's memory-mapped
// writes, no ENOTCONN), every write refused is ENOSPC, files committed
// before read back whole while the filesystem is full, writing resumes
// without a remount once dd's files are removed, an unmount on a full
// filesystem is clean, and after it every committed file is intact and
// scrub finds nothing. A store mounted while full reads, and refuses
// writes.
//
// What the writers see, as cp prints it ("No space left on device", never
// "Transport endpoint is not connected"):
//
//	cp: cannot create regular file 'M/files/default/...': No space left on device
//	cp: error writing 'M/files/default/...': No space left on device
//	cp: failed to close 'M/ref/<hex>': No space left on device
func TestFullStoreFilesystem(t *testing.T) {
	requireRoot(t)
	f := newFullStore(t)
	m := f.mount()
	committed := newCommitted()
	sources := newSources(t)

	f.phase(t, m, "filled, then written", committed, sources, func() { f.fill(t, 0) }, nil)
	// The log, on the full filesystem, says so (it keeps room of its own).
	if log, _ := os.ReadFile(filepath.Join(f.dir, "mount.log")); !strings.Contains(string(log), "new writes are refused until there is room") {
		t.Errorf("mount.log does not say that writes were refused:\n%s", log)
	}
	f.phase(t, m, "filled while written", committed, sources, nil, func() {
		time.Sleep(300 * time.Millisecond)
		f.fill(t, 0)
	})
	f.phase(t, m, "filled to half the headroom while written", committed, sources, nil, func() {
		time.Sleep(100 * time.Millisecond)
		f.fill(t, headroom/2)
	})
	f.phase(t, m, "filled twice while written, the reserve taken too", committed, sources, nil, func() {
		f.fill(t, 0)
		waitFor(t, "a piece of the reserve to be given back", func() bool { return f.free(t) >= reservePiece-(1<<20) })
		f.fill(t, 0)
	})
	// STOFUSE_FULLSTORE_ROUNDS=N fills it N more times while written,
	// after a random while (up to 2 s), with attributes of 24 KiB: Badger
	// then flushes a memtable about every second, and a fill that takes
	// the last free block while it copies a table into its memory map
	// still crashes it (README: what is left), in about 1 fill of 50.
	rounds, _ := strconv.Atoi(os.Getenv("STOFUSE_FULLSTORE_ROUNDS"))
	if rounds > 0 {
		xattrSize = 24 << 10
	}
	for round := range rounds {
		delay := time.Duration(rand.N(2000)) * time.Millisecond
		f.phase(t, m, fmt.Sprintf("round %d: filled after %s", round, delay), committed, sources, nil, func() {
			time.Sleep(delay)
			f.fill(t, 0)
		})
	}
	f.phaseFillingItself(t, m, committed)

	// An unmount on a full filesystem: Badger's last flush has the
	// reserve. A mount of the full store reads, and refuses writes.
	f.fill(t, 0)
	m.unmount()
	m = f.mount()
	committed.check(t, m.dir, "mounted full")
	if out := shFails(t, "cp /etc/hostname "+m.dir+"/files/default/mounted-full"); !strings.Contains(out, "No space left on device") {
		t.Errorf("a write into a store mounted full: %q, want No space left on device", out)
	}
	m.unmount()
	f.unfill(t)
	f.checkLog(t)
	m = f.mount()
	committed.check(t, m.dir, "after a remount")
	m.unmount()
	if r := f.run("scrub"); r.code != 0 || !strings.Contains(r.stdout, " 0 damaged, 0 missing") {
		t.Errorf("scrub after the full filesystem: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestFullStoreFilesystemVolumeElsewhere: the same with the volume on
// another filesystem; the store's (its metadata and the spool) fills.
func TestFullStoreFilesystemVolumeElsewhere(t *testing.T) {
	requireRoot(t)
	f := newFullStore(t)
	f.mustRun("volume", "add", "elsewhere", "--path", filepath.Join(t.TempDir(), "volume"))
	m := f.mount("--volume", "elsewhere")
	committed := newCommitted()
	sources := newSources(t)
	f.phase(t, m, "filled while written", committed, sources, nil, func() {
		time.Sleep(200 * time.Millisecond)
		f.fill(t, 0)
	})
	f.phase(t, m, "filled twice while written, the reserve taken too", committed, sources, nil, func() {
		f.fill(t, 0)
		waitFor(t, "a piece of the reserve to be given back", func() bool { return f.free(t) >= reservePiece-(1<<20) })
		f.fill(t, 0)
	})
	f.fill(t, 0)
	m.unmount()
	f.unfill(t)
	f.checkLog(t)
	m = f.mount("--volume", "elsewhere")
	committed.check(t, m.dir, "after a remount")
	m.unmount()
	if r := f.run("scrub"); r.code != 0 || !strings.Contains(r.stdout, " 0 damaged, 0 missing") {
		t.Errorf("scrub after the full filesystem: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The metadata store's numbers (metastore/badger/space.go): the free
// space it keeps, and the piece of its reserve it gives back at a time.
const (
	headroom     = 64 << 20
	reservePiece = 16 << 20
)

// fullStore is a store on a tmpfs of its own.
type fullStore struct {
	*store
	fs    string // the tmpfs
	fills int
	pids  []int // of the mounts' daemons
}

func newFullStore(t *testing.T) *fullStore {
	fs := mountTmpfs(t, 320<<20)
	f := &fullStore{store: newStoreAt(t, filepath.Join(fs, "store")), fs: fs}
	// After the mounts' cleanups, before the tmpfs goes: a daemon holds
	// its log there until it exits, after it let go of the store.
	t.Cleanup(func() {
		if t.Failed() {
			f.logCrash(t)
		}
		for _, pid := range f.pids {
			for deadline := time.Now().Add(10 * time.Second); !processGone(pid) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	return f
}

func (f *fullStore) mount(args ...string) *mount {
	m := f.store.mount(args...)
	f.pids = append(f.pids, m.pid)
	if err := os.MkdirAll(filepath.Join(m.dir, "files", "default", "w"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	return m
}

// fill fills the tmpfs with dd from outside, leaving about leave bytes
// free (0: until dd fails with ENOSPC).
func (f *fullStore) fill(t *testing.T, leave int64) {
	t.Helper()
	f.fills++
	cmd := fmt.Sprintf("dd if=/dev/zero of=%s/fill-%d bs=1M", f.fs, f.fills)
	if leave > 0 {
		cmd += fmt.Sprintf(" count=%d", max(0, (f.free(t)-leave)>>20))
	}
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	if leave == 0 && !strings.Contains(string(out), "No space left on device") || leave > 0 && err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

func (f *fullStore) unfill(t *testing.T) {
	t.Helper()
	fills, _ := filepath.Glob(filepath.Join(f.fs, "fill-*"))
	for _, fill := range fills {
		if err := os.Remove(fill); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fullStore) free(t *testing.T) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(f.fs, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// phase fills the filesystem before the writers start (before) or while
// they run (during), then checks what they saw, reads back what was
// committed before while it is full, frees the space and checks that
// writing goes on.
func (f *fullStore) phase(t *testing.T, m *mount, name string, committed *committed, sources *sources, before, during func()) {
	t.Helper()
	earlier := committed.copy()
	if before != nil {
		before()
	}
	w := startWriters(t, m, committed, sources)
	if during != nil {
		during()
	}
	time.Sleep(time.Second) // the writers meet the full filesystem
	earlier.check(t, m.dir, name+", while full")
	w.stop()
	f.checkAlive(t, m, name)
	w.check(t, name)
	f.unfill(t)
	f.checkWritesResume(t, m, committed, name)
}

// phaseFillingItself leaves more than the headroom free and writes big
// new files until the store refuses them: its own writes (the spool, the
// volume) stop where its metadata's headroom begins.
func (f *fullStore) phaseFillingItself(t *testing.T, m *mount, committed *committed) {
	t.Helper()
	name := "filled by its own writes"
	f.fill(t, headroom+24<<20)
	least := f.free(t)
	src := filepath.Join(t.TempDir(), "big")
	var refused string
	for i := 0; refused == "" && i < 40; i++ {
		writeRandomFile(t, src, uint64(1000+i), 4<<20)
		out, err := exec.Command("cp", src, fmt.Sprintf("%s/files/default/big-%d", m.dir, i)).CombinedOutput()
		if err != nil {
			refused = string(out)
		}
		least = min(least, f.free(t))
	}
	if !strings.Contains(refused, "No space left on device") {
		t.Fatalf("%s: the writes were not refused with ENOSPC: %q", name, refused)
	}
	if least < headroom/2 {
		t.Errorf("%s: the store's own writes left %d MiB free, less than half its headroom", name, least>>20)
	}
	f.checkAlive(t, m, name)
	f.unfill(t)
	f.checkWritesResume(t, m, committed, name)
}

func (f *fullStore) checkAlive(t *testing.T, m *mount, name string) {
	t.Helper()
	if processGone(m.pid) {
		f.checkLog(t)
		t.Fatalf("%s: the daemon died", name)
	}
	if _, err := os.ReadDir(filepath.Join(m.dir, "files", "default")); err != nil {
		t.Fatalf("%s: listing files/: %v", name, err)
	}
}

// checkWritesResume: once the space is back, a new file is stored, with
// no remount.
func (f *fullStore) checkWritesResume(t *testing.T, m *mount, committed *committed, name string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "resume")
	sum := writeRandomFile(t, src, uint64(f.fills), 300<<10)
	dst := filepath.Join(m.dir, "files", "default", fmt.Sprintf("resumed-%d", f.fills))
	if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("%s: a write once the space was freed: %v\n%s", name, err, out)
	}
	committed.add(dst[len(m.dir)+1:], sum)
}

// crashMarks are what a Go crash writes.
var crashMarks = []string{"fatal error", "SIGBUS", "panic", "unexpected fault"}

// logCrash logs the daemon's log from where a crash starts (80 lines),
// else its end.
func (f *fullStore) logCrash(t *testing.T) {
	log, _ := os.ReadFile(filepath.Join(f.dir, "mount.log"))
	lines := strings.Split(string(log), "\n")
	from := max(0, len(lines)-60)
	for i, line := range lines {
		if slices.ContainsFunc(crashMarks, func(mark string) bool { return strings.Contains(line, mark) }) {
			from = max(0, i-20)
			break
		}
	}
	t.Logf("mount.log from line %d:\n%s", from+1, strings.Join(lines[from:min(len(lines), from+100)], "\n"))
}

// checkLog fails the test if the daemon's log holds a crash.
func (f *fullStore) checkLog(t *testing.T) {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(f.dir, "mount.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, crash := range crashMarks {
		if strings.Contains(string(log), crash) {
			t.Fatalf("the daemon's log holds %q", crash) // logCrash shows it
		}
	}
}

// committed is what the writers stored: paths in the mount, with the
// SHA-256 of their content.
type committed struct {
	mu    sync.Mutex // guards files
	files map[string]string
}

func newCommitted() *committed { return &committed{files: map[string]string{}} }

func (c *committed) add(path, sum string) {
	c.mu.Lock()
	c.files[path] = sum
	c.mu.Unlock()
}

func (c *committed) copy() *committed {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := newCommitted()
	for path, sum := range c.files {
		out.files[path] = sum
	}
	return out
}

// check reads every committed file with sha256sum in mountpoint.
func (c *committed) check(t *testing.T, mountpoint, when string) {
	t.Helper()
	c.mu.Lock()
	var list strings.Builder
	paths := make([]string, 0, len(c.files))
	for path := range c.files {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		fmt.Fprintf(&list, "%s  %s\n", c.files[path], path)
	}
	c.mu.Unlock()
	if len(paths) == 0 {
		return
	}
	cmd := exec.Command("sha256sum", "--quiet", "-c", "-")
	cmd.Dir, cmd.Stdin = mountpoint, strings.NewReader(list.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %d committed files read back: %v\n%s", when, len(paths), err, out)
	}
}

// sources are the files the writers copy into the mount: a few random
// ones for files/, and many named by their hash for ref/ (each copied
// once).
type sources struct {
	dir    string
	files  []string          // names in dir
	sums   map[string]string // their SHA-256
	mu     sync.Mutex        // guards next
	hashed []string          // names in dir/ref
	next   int               // the next of hashed to copy
}

func newSources(t *testing.T) *sources {
	dir := t.TempDir()
	s := &sources{dir: dir, sums: map[string]string{}}
	for i := range 8 {
		name := fmt.Sprintf("src-%d", i)
		s.sums[name] = writeRandomFile(t, filepath.Join(dir, name), uint64(100+i), int64(64<<10+i*40<<10))
		s.files = append(s.files, name)
	}
	s.hashed = writeHashNamed(t, filepath.Join(dir, "ref"), 600, 77)
	return s
}

// giveBack returns a hash-named file whose copy was refused, to be copied
// again.
func (s *sources) giveBack(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hashed = append(s.hashed, name)
}

func (s *sources) nextHashed() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == len(s.hashed) {
		return "", false
	}
	s.next++
	return s.hashed[s.next-1], true
}

// writers copy into files/ and ref/ with cp, and write small files into
// files/ with write(2), until stop.
type writers struct {
	t       *testing.T
	once    sync.Once
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex      // guards what follows
	refused map[string]int  // ENOSPC refusals by writer
	forms   map[string]bool // what cp printed for them, paths cut out
	bad     []string        // any other failure
	stored  map[string]int  // successes by writer
	phaseNo int             // names the files of this phase
}

var phases int

// xattrSize is the size of the attributes the writers set.
var xattrSize = 2 << 10

func startWriters(t *testing.T, m *mount, committed *committed, sources *sources) *writers {
	phases++
	w := &writers{t: t, done: make(chan struct{}), refused: map[string]int{}, forms: map[string]bool{},
		stored: map[string]int{}, phaseNo: phases}
	t.Cleanup(w.stop) // before the unmount, if the test fails first
	files := filepath.Join(m.dir, "files", "default")
	w.run("cp into files/", func(i int) (string, string, error) {
		name := sources.files[i%len(sources.files)]
		dst := fmt.Sprintf("%s/w/p%d-c%d", files, w.phaseNo, i)
		return dst, sources.sums[name], cp(filepath.Join(sources.dir, name), dst)
	}, committed, m.dir)
	w.run("cp into ref/", func(i int) (string, string, error) {
		name, ok := sources.nextHashed()
		if !ok {
			time.Sleep(10 * time.Millisecond)
			return "", "", nil
		}
		err := cp(filepath.Join(sources.dir, "ref", name), m.ref(name))
		if err != nil {
			sources.giveBack(name)
		}
		return m.ref(name), name, err
	}, committed, m.dir)
	w.run("write(2) into files/", func(i int) (string, string, error) {
		dst := fmt.Sprintf("%s/w/p%d-s%d", files, w.phaseNo, i)
		content := []byte(fmt.Sprintf("small file %d of phase %d\n", i, w.phaseNo))
		return dst, sha256Hex(content), os.WriteFile(dst, content, 0o644)
	}, committed, m.dir)
	// Extended attributes: the metadata grows, and Badger flushes
	// memtables and compacts while the filesystem fills (one memtable in
	// about 700 attributes of 24 KiB, with STOFUSE_FULLSTORE_ROUNDS).
	value := make([]byte, xattrSize)
	for i := range value {
		value[i] = byte(i * 7)
	}
	dst := ""
	w.run("setxattr in files/", func(i int) (string, string, error) {
		if dst == "" || i%50 == 0 {
			dst = fmt.Sprintf("%s/w/p%d-x%d", files, w.phaseNo, i)
			if err := os.WriteFile(dst, nil, 0o644); err != nil {
				dst = ""
				return "", "", err
			}
			committed.add(dst[len(m.dir)+1:], sha256Hex(nil))
		}
		value[0] = byte(i)
		return dst, "", unix.Setxattr(dst, "user.fill", value, 0)
	}, committed, m.dir)
	return w
}

// cpError is a failed cp, with what it printed.
type cpError struct{ out string }

func (e *cpError) Error() string { return e.out }

func cp(src, dst string) error {
	if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
		return &cpError{string(out)}
	}
	return nil
}

var quotedPath = regexp.MustCompile(`'[^']*'`)

func (w *writers) run(who string, write func(i int) (dst, sum string, err error), committed *committed, mountpoint string) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-w.done:
				return
			default:
			}
			dst, sum, err := write(i)
			if dst == "" && err == nil {
				continue
			}
			w.mu.Lock()
			var cpErr *cpError
			refused := w.refused[who]
			switch {
			case err == nil:
				w.stored[who]++
				if sum != "" {
					committed.add(dst[len(mountpoint)+1:], sum)
				}
			case errors.As(err, &cpErr) && strings.Contains(cpErr.out, "No space left on device") &&
				!strings.Contains(cpErr.out, "not connected"):
				w.refused[who]++
				for _, line := range strings.Split(strings.TrimSpace(cpErr.out), "\n") {
					w.forms[quotedPath.ReplaceAllString(line, "'...'")] = true
				}
			case errors.Is(err, syscall.ENOSPC):
				w.refused[who]++
			default:
				w.bad = append(w.bad, fmt.Sprintf("%s: %s: %v", who, dst, err))
			}
			again := w.refused[who] > refused
			w.mu.Unlock()
			if again {
				time.Sleep(5 * time.Millisecond) // and try again
			}
		}
	}()
}

// stop stops the writers; a second stop does nothing.
func (w *writers) stop() {
	w.once.Do(func() {
		close(w.done)
		w.wg.Wait()
	})
}

// check: every failure was ENOSPC, and every writer met one.
func (w *writers) check(t *testing.T, name string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		t.Fatalf("%s: writes failed otherwise than with ENOSPC:\n%s", name, strings.Join(w.bad, "\n"))
	}
	for _, who := range []string{"cp into files/", "cp into ref/", "write(2) into files/", "setxattr in files/"} {
		if w.refused[who] == 0 && w.stored[who] > 0 {
			t.Errorf("%s: %s: no write refused (%d stored)", name, who, w.stored[who])
		}
		if w.refused[who]+w.stored[who] == 0 && who != "cp into ref/" { // which may run out of files to copy
			t.Errorf("%s: %s: wrote nothing", name, who)
		}
	}
	var forms []string
	for form := range w.forms {
		forms = append(forms, form)
	}
	sort.Strings(forms)
	t.Logf("%s: stored %v, refused with ENOSPC %v; cp said:\n%s", name, w.stored, w.refused, strings.Join(forms, "\n"))
}
