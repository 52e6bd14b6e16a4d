package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goSource is Go's own source tree: about 11,000 files that nobody here
// wrote, with symlinks, empty files and deep directories.
func goSource(t *testing.T) string {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(goroot)), "src")
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		t.Fatalf("no Go source tree at %s: %v", src, err)
	}
	return src
}

// tarListing lists a tree the way tar sees it: type, mode, owner, size,
// mtime and name of every entry, sorted.
func tarListing(t *testing.T, dir string) []string {
	t.Helper()
	out := sh(t, "tar -C "+dir+" --numeric-owner -cf - . | tar -tvf -")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	return lines
}

func rsyncTransferred(t *testing.T, from, to string) string {
	t.Helper()
	out := sh(t, "rsync -a --stats "+from+"/ "+to+"/")
	match := regexp.MustCompile(`Number of regular files transferred: ([\d,]+)`).FindStringSubmatch(out)
	if match == nil {
		t.Fatalf("no transfer count in rsync --stats:\n%s", out)
	}
	return strings.ReplaceAll(match[1], ",", "")
}

// TestFilesGoSourceTree copies Go's source tree in with cp -a and rsync -a
// (twice: the second pass transfers nothing), reads it out with tar,
// untars a tarball in, renames and deletes in bulk, and compares everything
// again after a remount.
func TestFilesGoSourceTree(t *testing.T) {
	src := goSource(t)
	s := newStore(t)
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	copied := filepath.Join(files, "cp")
	synced := filepath.Join(files, "rsync")
	untarred := filepath.Join(files, "untar")

	sh(t, "cp -a "+src+" "+copied)
	sh(t, "diff -r --no-dereference "+src+" "+copied)
	want := tarListing(t, src)
	if got := tarListing(t, copied); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tar lists the copy differently: %d entries, want %d; first difference %s", len(got), len(want), firstDifference(got, want))
	}
	tarErrors := sh(t, "tar -C "+copied+" -cf /dev/null . 2>&1; true")
	if strings.Contains(tarErrors, "changed as we read it") {
		t.Fatalf("tar: %s", tarErrors)
	}

	if n := rsyncTransferred(t, src, synced); n == "0" {
		t.Fatal("the first rsync transferred nothing")
	}
	if n := rsyncTransferred(t, src, synced); n != "0" {
		t.Fatalf("the second rsync transferred %s files, want 0", n)
	}

	tarball := filepath.Join(t.TempDir(), "src.tar")
	sh(t, "tar -C "+src+" -cf "+tarball+" .")
	sh(t, "mkdir "+untarred+" && tar -C "+untarred+" -xf "+tarball)
	sh(t, "diff -r --no-dereference "+src+" "+untarred)

	// Bulk: rename every .go file of one package tree, move a directory,
	// delete a whole copy.
	renamed := sh(t, "cd "+untarred+"/net && n=0; for f in $(find . -name '*.go'); do mv $f $f.renamed; n=$((n+1)); done; echo $n")
	sh(t, "mv "+untarred+"/crypto "+untarred+"/crypto-moved")
	sh(t, "rm -rf "+synced)

	m.unmount()
	m = s.mount()
	files = filepath.Join(m.dir, "files", "default")
	sh(t, "diff -r --no-dereference "+src+" "+filepath.Join(files, "cp"))
	sh(t, "diff -r --no-dereference "+src+"/crypto "+filepath.Join(files, "untar", "crypto-moved"))
	if got := sh(t, "find "+filepath.Join(files, "untar", "net")+" -name '*.go.renamed' | wc -l"); strings.TrimSpace(got) != strings.TrimSpace(renamed) {
		t.Fatalf("after a remount %s renamed files, want %s", strings.TrimSpace(got), strings.TrimSpace(renamed))
	}
	sh(t, "cd "+src+"/net && for f in $(find . -name '*.go'); do cmp $f "+filepath.Join(files, "untar", "net")+"/$f.renamed; done")
	if _, err := os.Stat(filepath.Join(files, "rsync")); !os.IsNotExist(err) {
		t.Fatalf("the deleted copy is back after a remount: %v", err)
	}
	if got := tarListing(t, filepath.Join(files, "cp")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after a remount tar lists the copy differently: first difference %s", firstDifference(got, want))
	}
	m.unmount()
	if r := s.run("scrub"); r.code != 0 || !strings.Contains(r.stdout, " 0 damaged, 0 missing") {
		t.Fatalf("scrub after the tree tests: exit %d\n%s", r.code, r.stdout)
	}
}

func firstDifference(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("%q vs %q", got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}

// TestFilesKillDuringCopy kills the daemon with SIGKILL while files are
// being written. After a remount every file whose close had returned is
// there with the right content, nothing half-written appears, and the
// store scrubs clean.
func TestFilesKillDuringCopy(t *testing.T) {
	s := newStore(t)
	m := s.mount()
	dir := filepath.Join(m.dir, "files", "default", "crash")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := func(i int) []byte {
		b := make([]byte, 300_000+i)
		for j := range b {
			b[j] = byte(i + j*31)
		}
		return b
	}
	closed := make(chan int, 10_000) // files whose close returned
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
			if err != nil {
				return
			}
			data := content(i)
			for off := 0; off < len(data); off += 65536 {
				if _, err := f.Write(data[off:min(off+65536, len(data))]); err != nil {
					f.Close()
					return
				}
			}
			if f.Close() != nil {
				return
			}
			closed <- i
		}
	}()
	done := map[int]bool{}
	for len(done) < 60 {
		done[<-closed] = true
	}
	if err := syscall.Kill(m.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not notice that the daemon was killed")
	}
	close(closed)
	for i := range closed {
		done[i] = true
	}
	// A killed process lets go of the store's lock only once all of its
	// threads are gone.
	waitFor(t, "the killed daemon to exit", func() bool { return processGone(m.pid) })
	exec.Command("umount", "-l", m.dir).Run() // the dead mount

	m = s.mount()
	dir = filepath.Join(m.dir, "files", "default", "crash")
	for i := range done {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil || string(got) != string(content(i)) {
			t.Fatalf("file %d, closed before the kill: %d bytes, %v", i, len(got), err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var i int
		fmt.Sscan(e.Name(), &i)
		if got, _ := os.ReadFile(filepath.Join(dir, e.Name())); string(got) != string(content(i)) {
			t.Fatalf("file %s after the kill has %d bytes that are not its content: a half-written file", e.Name(), len(got))
		}
	}
	t.Logf("%d files closed before the kill, %d files after the remount", len(done), len(entries))
	m.unmount()
	if r := s.run("scrub"); r.code != 0 {
		t.Fatalf("scrub after the kill: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
