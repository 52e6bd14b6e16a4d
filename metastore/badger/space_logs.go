package badger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The memtable logs (space.go): the one in use allocated in full, the
// next one made ahead.

// prepareLocked makes sure that the memtable log in use is allocated in
// full and that the next one is made ahead. A filesystem that cannot
// allocate ahead is noted in g.cannot, and nothing is guarded.
func (g *spaceGuard) prepareLocked() error {
	if g.cannot != nil {
		return nil
	}
	if g.next != nil {
		if info, err := g.next.Stat(); err == nil && info.Size() == 0 {
			return nil // still ahead of Badger
		}
		g.next.Close() // Badger took it: it is the log in use now
		g.next = nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		number, size, err := newestMemtableLog(g.dir)
		if err != nil {
			return err
		}
		if number != g.current && number >= 0 {
			path := memtableLogPath(g.dir, number)
			if err := g.roomToAllocate(path, size, "the memtable log in use"); err != nil {
				return err
			}
			if err := allocate(path, size); err != nil {
				return g.allocationFailed(err, "the memtable log in use")
			}
			g.current = number
		}
		if err := g.roomToAllocate("", memtableLogSize, "the next memtable log"); err != nil {
			return err
		}
		path := memtableLogPath(g.dir, number+1)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue // Badger made it meanwhile: allocate it, and make the one after
		}
		if err != nil {
			return err
		}
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, memtableLogSize); err != nil {
			f.Close()
			os.Remove(path)
			return g.allocationFailed(err, "the next memtable log")
		}
		g.next, g.nextPath = f, path
		return nil
	}
	return fmt.Errorf("metadata directory %s: its memtable logs change too fast to be made ahead", g.dir)
}

// roomToAllocate says whether size bytes of the file at path ("": a new
// one) may be allocated: only with allocationMargin left free after. A
// fallocate(2) that fails for want of room takes the last free blocks
// until it gives them back, and a table Badger writes meanwhile would
// fault; and it is made right when Badger flushes (it takes the log made
// ahead when it turns the memtable over).
func (g *spaceGuard) roomToAllocate(path string, size int64, what string) error {
	need := uint64(size)
	if path != "" {
		if info, err := os.Stat(path); err == nil {
			need -= min(need, uint64(info.Sys().(*syscall.Stat_t).Blocks*512))
		}
	}
	free, err := g.free()
	if err != nil || free >= need+allocationMargin {
		return nil
	}
	return g.refuseLocked(free, fmt.Sprintf("there is no room for %s (%s, and %s left for the flushes under way)",
		what, mib(need), mib(allocationMargin)))
}

// allocationFailed is what a failed fallocate of what (a memtable log)
// means: no room (a *NoSpaceError), or a filesystem that cannot allocate
// ahead (noted; writes then go on unguarded).
func (g *spaceGuard) allocationFailed(err error, what string) error {
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		g.cannot = err
		if g.note != nil {
			g.note("the filesystem of %s cannot allocate files ahead (%v): if it fills up, the metadata store may crash", g.dir, err)
		}
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) {
		free, _ := g.free()
		return g.refuseLocked(free, "there is no room for "+what)
	}
	return fmt.Errorf("allocating %s in %s: %w", what, g.dir, err)
}

func memtableLogPath(dir string, number int) string {
	return filepath.Join(dir, fmt.Sprintf("%05d.mem", number))
}

// memtableLogNumber is the number of a memtable log's name, or -1.
func memtableLogNumber(name string) int {
	digits, ok := strings.CutSuffix(name, ".mem")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// newestMemtableLog returns the number and size of the newest memtable
// log in dir that is not empty (-1 if none).
func newestMemtableLog(dir string) (int, int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return -1, 0, err
	}
	newest, size := -1, int64(0)
	for _, e := range entries {
		n := memtableLogNumber(e.Name())
		if n <= newest {
			continue
		}
		if info, err := e.Info(); err == nil && info.Size() > 0 {
			newest, size = n, info.Size()
		}
	}
	return newest, size, nil
}

// isPlaceholder reports whether entry is a memtable log made ahead and
// never used (empty).
func isPlaceholder(entry fs.DirEntry) bool {
	if memtableLogNumber(entry.Name()) < 0 {
		return false
	}
	info, err := entry.Info()
	return err == nil && info.Size() == 0
}

// hasPlaceholder reports whether dir holds a placeholder (isPlaceholder).
func hasPlaceholder(dir string) bool {
	entries, _ := os.ReadDir(dir)
	return slices.ContainsFunc(entries, isPlaceholder)
}

// removePlaceholders removes the placeholders in dir: made by a process
// that died, they hold nothing.
func removePlaceholders(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if isPlaceholder(e) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// allocate allocates the blocks of the first size bytes of the file at
// path, where it has holes.
func allocate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fallocate(int(f.Fd()), 0, 0, size)
}

// allocatedBytes is what the files of dir take on its filesystem.
func allocatedBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
	}
	return total
}
