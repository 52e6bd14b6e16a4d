package badger

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The reserve (space.go), and the watch that gives it back and makes it
// whole again.

// keepReserveLocked makes the reserve whole again if it is not and that
// leaves spaceHeadroom free, and reports whether it is whole.
func (g *spaceGuard) keepReserveLocked(free uint64) bool {
	if g.noReserve || g.reserved >= reserveSize {
		return true
	}
	if info, err := os.Stat(g.reservePath); err == nil && info.Size() == reserveSize &&
		info.Sys().(*syscall.Stat_t).Blocks*512 >= reserveSize {
		g.reserved = reserveSize // whole already (a store opened again)
		return true
	}
	if free < spaceHeadroom+uint64(reserveSize-g.reserved) {
		return false
	}
	f, err := os.OpenFile(g.reservePath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, reserveSize); err != nil {
		f.Truncate(g.reserved) // what was allocated past it goes back
		if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
			g.noReserve = true // none can be kept here: go on without
			os.Remove(g.reservePath)
		}
		return g.noReserve
	}
	g.reserved = reserveSize
	if g.note != nil && g.refusing {
		g.note("the metadata directory's reserve (%s) is whole again, in %s", mib(reserveSize), g.reservePath)
	}
	return true
}

// releaseLocked gives a piece of the reserve (all of it if all) back to
// the filesystem.
func (g *spaceGuard) releaseLocked(free uint64, all bool) {
	left := max(0, g.reserved-reservePiece)
	if all {
		left = 0
	}
	var err error
	if left == 0 {
		err = os.Remove(g.reservePath)
	} else {
		err = os.Truncate(g.reservePath, left)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return
	}
	given := g.reserved - left
	g.reserved = left
	if g.note != nil {
		g.note("the filesystem of the metadata directory %s is nearly full (%s free): gave back %s of its reserve "+
			"(%s left) for the flushes and compactions in flight", g.dir, mib(free), mib(uint64(given)), mib(uint64(left)))
	}
}

// watch looks at the free space every spaceWatchEvery, and every
// spaceWatchLow while it is under spaceHeadroom: it makes the next
// memtable log once Badger took the last one (a write does it too), gives
// the reserve back when the free space falls under releaseBelow while
// only the metadata takes it, and makes it again once there is room.
func (g *spaceGuard) watch() {
	defer close(g.done)
	for {
		every := spaceWatchEvery
		if g.lastFree < 2*spaceHeadroom {
			every = spaceWatchLow // it may fill before the next look
		}
		select {
		case <-g.stop:
			return
		case <-time.After(every):
		}
		g.look()
	}
}

func (g *spaceGuard) look() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cannot != nil {
		return
	}
	g.prepareLocked()
	free, err := g.free()
	if err != nil {
		return
	}
	low := free < spaceHeadroom
	var meta int64
	if low {
		meta = allocatedBytes(g.dir)
	}
	// Someone else takes the free space when it shrank since the last
	// look by more than the metadata grew (with a little slack, for the
	// daemon's log); without a count from the last look, that is unknown.
	if !g.metaKnown || g.lastFree > free && int64(g.lastFree-free) > meta-g.lastMeta+(256<<10) {
		g.othersTook = time.Now()
	}
	switch {
	case g.reserved > 0 && (free < full || free < releaseBelow && time.Since(g.othersTook) >= othersQuiet):
		g.releaseLocked(free, false)
	case g.reserved < reserveSize:
		g.keepReserveLocked(free)
	}
	g.lastFree, g.lastMeta, g.metaKnown = free, meta, low
}
