package badger

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/blobstore"
)

// A full filesystem under the metadata directory must be ENOSPC for the
// writers, never a crash. Badger writes its memtable logs and its tables
// through shared memory maps of files it sizes with ftruncate(2), that
// is files full of holes; a store into a hole when the filesystem has no
// block left is SIGBUS, in Badger's own goroutine, where Go cannot
// recover it. So (spaceGuard):
//
//   - A memtable log never has a hole when Badger writes into it: the one
//     in use is allocated in full (fallocate(2)) when the store opens, and
//     the one Badger will make next is made ahead, empty, with its blocks
//     allocated past its end (FALLOC_FL_KEEP_SIZE). Badger opens it as a
//     new file (it takes an existing empty one for one) and ftruncates it
//     to its size, over blocks that are there already. Each time Badger
//     takes it, the next one is made; until it is, writes are refused.
//     The value log is never written past its header: no value reaches
//     the value threshold (the largest are extended attributes, at most
//     32 KiB).
//   - Tables (a memtable's flush, compactions) cannot be allocated ahead:
//     Badger makes each with O_EXCL, and one whose creation fails must
//     not be provoked (a compaction then drops the keys of the table it
//     could not make: subcompact hands its error to nothing). For them,
//     writes are refused while less than spaceHeadroom is free, which
//     leaves room for the flushes and compactions that the writes before
//     led to; the store's other writes on the same filesystem (the
//     mount's spool, a local volume) ask CheckSpace too, so that they
//     never take what is kept; and the guard's own allocations leave
//     allocationMargin free (a fallocate that fails takes the last
//     blocks until it gives them back). A reserve file beside the
//     directory (meta.reserve, reserveSize) is given back, a reservePiece
//     at a time, when the filesystem is full (a dd that filled it has
//     met ENOSPC and ended), or when less than releaseBelow is free and
//     no one but the metadata took free space for othersQuiet (a process
//     still filling the disk would take it too); all of it at Open and
//     Close when room is short (Badger's replay and its last flush write
//     tables). It is made whole again once that leaves spaceHeadroom
//     free, and writes are refused until it is.
//
// What is left: a process that takes the very last free blocks in the
// milliseconds that Badger copies a table into its map can still make it
// fault (test/fullstore_test.go's stress mode: about 1 fill in 50, with a
// memtable flushed every second). Only Badger can close that, by
// allocating its tables (fallocate) before it maps them.

const (
	// memTableSize is Badger's memtable size (badgerOptions). It bounds a
	// transaction to 15% of it (1.2 MiB, and 13,107 writes):
	// WriteBlobsCreated's batches of 2,000 blobs need some 0.7 MiB and
	// 8,000 writes. Badger allocates a memtable's arena whole, and keeps
	// up to three (the one in use and two being flushed), beside the
	// builder of the level-0 table a flush writes, which grows to the
	// memtable's size: at 16 MiB they were some 100 MiB of the daemon's
	// heap at their highest during a gc.
	memTableSize = 8 << 20
	// replayMemTableSize is the largest memtable size any stofuse has
	// used (16 MiB, until memTableSize became 8): the size that a memtable
	// log left by an unclean stop is replayed with (replayLogs).
	replayMemTableSize = 16 << 20
	// memtableLogSize is the size of Badger's memtable logs (.mem files):
	// twice the memtable (Badger's openMemTable).
	memtableLogSize = 2 * memTableSize
	// spaceHeadroom is the free space under which writes are refused: a
	// memtable's flush and one at Close (at most a table of about a
	// memtable each), and a compaction of level 0 into the base level
	// (what it reads, at most two such tables and the base level's 10
	// MiB, written again before the old tables go).
	spaceHeadroom = 64 << 20
	// reserveSize is the size of the reserve file, given back a
	// reservePiece at a time (a table of a memtable fits in one).
	reserveSize  = 2 * reservePiece
	reservePiece = 16 << 20
	// releaseBelow is the free space under which a piece of the reserve
	// is given back while no one else takes the free space, and full the
	// free space under which it is given back at once: whoever filled the
	// filesystem has met ENOSPC (a dd has ended).
	releaseBelow = 16 << 20
	full         = 1 << 20
	// othersQuiet is how long no one else may have taken free space
	// before the reserve is given back: a process filling the disk would
	// take it too (dd pauses for a few milliseconds when the machine is
	// busy, and must not look done).
	othersQuiet = 100 * time.Millisecond
	// closeNeed is the free space Badger's Close needs to write what its
	// memtables hold as tables: a table holds less than its memtable (no
	// skiplist, its keys prefix-compressed, its blocks compressed), and
	// there is at most one memtable besides the one in use (a flush
	// finishes within the headroom, and writes stop below it).
	closeNeed = 3 * memTableSize / 2
	// allocationMargin is what the guard's own allocations (the memtable
	// logs, the reserve) leave free at least.
	allocationMargin = closeNeed
	// spaceWatchEvery is how often the guard looks at the free space, and
	// spaceWatchLow how often once it is under spaceHeadroom.
	spaceWatchEvery = 100 * time.Millisecond
	spaceWatchLow   = 2 * time.Millisecond
)

// NoSpaceError: a write was refused because the filesystem of the
// metadata directory is (nearly) full. It unwraps to syscall.ENOSPC.
type NoSpaceError struct {
	Dir  string // the metadata directory
	Free uint64 // bytes free there when the write was refused
	Why  string // what is short
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("the filesystem of the metadata directory %s is nearly full (%s free): %s; "+
		"new writes are refused until there is room: %v", e.Dir, mib(e.Free), e.Why, syscall.ENOSPC)
}

func (e *NoSpaceError) Unwrap() error { return syscall.ENOSPC }

func mib(bytes uint64) string { return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20)) }

// spaceGuard keeps the metadata directory's filesystem from filling under
// Badger (see above). A nil *spaceGuard (a read-only store) guards
// nothing.
type spaceGuard struct {
	dir         string // the metadata directory
	reservePath string

	mu sync.Mutex // guards the fields below; held while they are fallocated, never during a Badger call
	// next is the memtable log made ahead (empty; nil if none), nextPath its name.
	next      *os.File
	nextPath  string
	current   int   // the memtable log allocated in full (its number), -1 if none
	cannot    error // why this filesystem cannot allocate ahead (nil if it can): nothing is then guarded
	reserved  int64 // bytes the reserve file holds (reserveSize: whole)
	noReserve bool  // the filesystem cannot allocate one: none is kept
	refusing  bool  // the last look refused writes (for the notes)
	// lastFree is the free space at the watch's last look, and lastMeta
	// the metadata directory's allocated bytes then (if metaKnown: it is
	// counted only while the free space is under spaceHeadroom);
	// othersTook is when someone else was last seen taking free space
	// (or the count began).
	lastFree   uint64
	lastMeta   int64
	metaKnown  bool
	othersTook time.Time
	note       func(format string, args ...any) // SetSpaceLogger's; nil: none

	stop chan struct{}
	done chan struct{}
}

func newSpaceGuard(dir string) *spaceGuard {
	return &spaceGuard{dir: dir, reservePath: filepath.Clean(dir) + ".reserve", current: -1}
}

// beforeOpen runs before Badger opens dir: it removes the memtable log
// made ahead by a process that died (Badger refuses an empty one) while it
// holds the directory's lock, and gives the reserve back if room is
// short, for what the open replays and flushes.
func (g *spaceGuard) beforeOpen() {
	if g == nil {
		return
	}
	if d, err := os.Open(g.dir); err == nil {
		if unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			removePlaceholders(g.dir)
		}
		d.Close() // and its lock
	}
	if free, err := g.free(); err == nil && free < spaceHeadroom {
		os.Remove(g.reservePath)
	}
}

// start prepares the memtable logs and the reserve of an open database,
// and watches the free space until beforeClose.
func (g *spaceGuard) start() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.prepareLocked()
	if free, err := g.free(); err == nil {
		g.keepReserveLocked(free)
		g.lastFree = free
	}
	g.mu.Unlock()
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	go g.watch()
}

// check says whether a write may go ahead: nil, or a *NoSpaceError (or
// the error that kept the next memtable log from being made).
func (g *spaceGuard) check() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cannot != nil {
		return nil
	}
	if err := g.prepareLocked(); err != nil {
		return err
	}
	free, err := g.free()
	if err != nil {
		return nil // the directory is gone, or worse: the store's watch says so
	}
	whole := g.noReserve || g.reserved >= reserveSize
	if !g.keepReserveLocked(free) {
		return g.refuseLocked(free, fmt.Sprintf("it gave back its reserve (%s of %s left), which it makes whole once %s are free",
			mib(uint64(g.reserved)), mib(reserveSize), mib(spaceHeadroom+uint64(reserveSize-g.reserved))))
	}
	if !whole {
		// keepReserveLocked may have allocated the reserve: look again.
		// (With the reserve whole, as nearly always, the first look
		// stands: one statfs per write instead of two.)
		free, err = g.free()
	}
	if err == nil && free < spaceHeadroom {
		return g.refuseLocked(free, fmt.Sprintf("it keeps %s free for its own flushes and compactions", mib(spaceHeadroom)))
	}
	g.acceptLocked(free)
	return nil
}

// checkLogs is check for a write that may go on while the free space is
// short (updateHousekeeping): nil once the memtable logs are ready.
func (g *spaceGuard) checkLogs() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prepareLocked()
}

func (g *spaceGuard) refuseLocked(free uint64, why string) error {
	err := &NoSpaceError{Dir: g.dir, Free: free, Why: why}
	if !g.refusing && g.note != nil {
		g.note("%v", err)
	}
	g.refusing = true
	return err
}

func (g *spaceGuard) acceptLocked(free uint64) {
	if g.refusing && g.note != nil {
		g.note("the metadata directory %s has room again (%s free): writes are accepted", g.dir, mib(free))
	}
	g.refusing = false
}

// free is the space free on the directory's filesystem, to a writer
// without privilege.
func (g *spaceGuard) free() (uint64, error) {
	space, err := blobstore.SpaceOf(g.dir)
	if err != nil {
		return 0, err
	}
	return space.BlocksAvail * space.BlockSize, nil
}

// beforeClose ends the watch, and gives the reserve back if room is short
// for Badger's last flush. It returns a *NoSpaceError if even then there
// is less than closeNeed free: Badger's Close would then fault.
func (g *spaceGuard) beforeClose() error {
	if g == nil || g.stop == nil {
		return nil
	}
	close(g.stop)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	free, err := g.free()
	if err != nil {
		return nil
	}
	if free < spaceHeadroom && g.reserved > 0 {
		g.releaseLocked(free, true)
		free, _ = g.free()
	}
	if free < closeNeed && g.cannot == nil {
		return &NoSpaceError{Dir: g.dir, Free: free,
			Why: fmt.Sprintf("closing the metadata store writes what it holds in memory as tables, which needs up to %s", mib(closeNeed))}
	}
	return nil
}

// afterClose removes the memtable log made ahead, once Badger is closed,
// and makes the reserve again if there is room.
func (g *spaceGuard) afterClose() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next != nil {
		if info, err := g.next.Stat(); err == nil && info.Size() == 0 {
			os.Remove(g.nextPath)
		}
		g.next.Close()
		g.next = nil
	}
	if free, err := g.free(); err == nil {
		g.keepReserveLocked(free)
	}
}

// SetSpaceLogger gives the store a function that it tells when its
// filesystem is nearly full and writes are refused, when it gave its
// reserve back and when writes are accepted again.
func (s *Store) SetSpaceLogger(logf func(format string, args ...any)) {
	if s.space == nil {
		return
	}
	s.space.mu.Lock()
	s.space.note = logf
	s.space.mu.Unlock()
}

// CheckSpace says whether a write on the filesystem of the metadata
// directory may go ahead: nil, or a *NoSpaceError (ENOSPC) while it is
// nearly full (see above). Every write transaction asks it; so must the
// caller's other writes on that filesystem (a spool, a local volume), so
// that they leave the metadata its room. It may be called from many
// goroutines at once; it costs a statfs(2) and an fstat(2).
func (s *Store) CheckSpace() error { return s.space.check() }
