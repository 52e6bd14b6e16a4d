package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mapperEnv makes the test binary a process that maps FILE shared and
// writable, writes through the mapping, closes the file and exits with the
// mapping in place: what the kernel writes back at its exit.
const mapperEnv = "STOFUSE_TEST_MAPPER"

func mapper(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 1
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return 2
	}
	f.Close()
	copy(mem, "written by a process that exits")
	return 0
}

func pread(t *testing.T, f *os.File, n int, off int64) []byte {
	t.Helper()
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, off)
	if err != nil && got != n {
		t.Fatalf("pread of %s at %d: %v", f.Name(), off, err)
	}
	return buf[:got]
}

// TestMmapWritable: a file of files/ open for writing maps shared and
// writable, as sqlite's -shm files, LMDB and Badger map theirs. What is
// written through the mapping is what read(2) reads and what is stored
// (at msync, at close, and what the mapping writes after close(2) at
// munmap or exit); what write(2) and truncate(2) do shows in the mapping; a
// read-only mapping of a file being written follows its writes. It all
// survives a remount.
func TestMmapWritable(t *testing.T) {
	requireFuse(t)
	s := newStore(t)
	m := s.mount()
	files := filepath.Join(m.dir, "files", "default")
	path := files + "/mapped"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 3 * 4096
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap(MAP_SHARED, PROT_WRITE) of a file of files/ open O_RDWR: %v", err)
	}
	unmapped := false
	defer func() {
		if !unmapped {
			syscall.Munmap(mem)
		}
	}()

	// The mapping and read(2)/write(2) see each other.
	copy(mem, "through the mapping")
	if got := pread(t, f, 19, 0); string(got) != "through the mapping" {
		t.Errorf("read(2) after a write through the mapping: %q", got)
	}
	if _, err := f.WriteAt([]byte("by write(2)"), 4096); err != nil {
		t.Fatal(err)
	}
	if got := mem[4096 : 4096+11]; string(got) != "by write(2)" {
		t.Errorf("the mapping after write(2): %q", got)
	}
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	view, err := syscall.Mmap(int(reader.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("a read-only mapping of a file being written: %v", err)
	}
	defer func() {
		if view != nil {
			syscall.Munmap(view)
		}
	}()
	if got := view[4096 : 4096+11]; string(got) != "by write(2)" {
		t.Errorf("a read-only mapping of a file being written: %q", got)
	}

	// msync stores it: another process reads what the mapping wrote.
	copy(mem[2*4096:], "synced")
	if err := unix.Msync(mem, unix.MS_SYNC); err != nil {
		t.Fatalf("msync: %v", err)
	}
	if got := sh(t, "head -c 19 "+path); got != "through the mapping" {
		t.Errorf("another process after msync: %q", got)
	}
	if got := sh(t, "dd if="+path+" bs=4096 skip=2 count=1 status=none | head -c 6"); got != "synced" {
		t.Errorf("another process after msync, third page: %q", got)
	}

	// truncate(2) shows in the mapping (within its first page).
	if err := f.Truncate(8); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if got := mem[:19]; !bytes.Equal(got, append([]byte("through "), make([]byte, 11)...)) {
		t.Errorf("the mapping after truncate(2) to 8 bytes and back: %q", got)
	}

	// Close, then write through the mapping, then unmap: the writes made
	// after close(2) are stored at munmap.
	copy(mem[100:], "after close")
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	copy(mem[200:], "after close too")
	if err := syscall.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	unmapped = true
	syscall.Munmap(view)
	view = nil
	reader.Close()
	want := make([]byte, size)
	copy(want, "through ")
	copy(want[100:], "after close")
	copy(want[200:], "after close too") // the truncate dropped the rest
	waitFor(t, "the release to store the mapping's last writes", func() bool {
		got, err := os.ReadFile(path)
		return err == nil && bytes.Equal(got, want)
	})

	// A process that exits with the file mapped, after close(2).
	sh(t, "head -c 4096 /dev/zero > "+files+"/exits")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), mapperEnv+"="+files+"/exits")
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("the mapping process: %v\n%s", err, out)
	}
	waitFor(t, "the release to store what an exiting process's mapping wrote", func() bool {
		got, err := os.ReadFile(files + "/exits")
		return err == nil && bytes.HasPrefix(got, []byte("written by a process that exits\x00")) && len(got) == 4096
	})

	m.unmount()
	m = s.mount()
	if got, err := os.ReadFile(filepath.Join(m.dir, "files", "default", "mapped")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("after a remount: %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(m.dir, "files", "default", "exits")); err != nil || !bytes.HasPrefix(got, []byte("written by a process that exits")) {
		t.Errorf("what the exiting process wrote, after a remount: %q, %v", got, err)
	}
}
