package fusefs

import (
	"hash/fnv"
	"sync"

	"github.com/stofuse/stofuse/metastore"
)

// Inode numbers under snapshots/ have the top two bits 11, a space of
// their own: ref/'s have 00, files/'s 01 and go-fuse's automatic ones
// (files being written to ref/) start at 2^63, 10, and stay far below 11.
// A snapshot's tree holds the inode numbers files/ had (entry.Ino), so a
// view must not answer with those: the kernel would take a snapshot's
// file for the live one of the same number.
//
//	11 | view (22 bits) | the entry's inode number without its top bits (40 bits)
//
// A view is one snapshot of one collection. Its number is a hash of the
// collection and snapshot names, so that the inode numbers of a snapshot
// are the same at every mount (tar's incremental mode and rsync's
// --inplace across runs like that), with the next free number taken when
// two snapshots seen in one mount hash alike: unique within the mount is
// what the kernel needs, stable across mounts is what the hash gives in
// all but that case. A view's root, the collection's folder, is
// 11 | view | 0 (no tree inode has the counter 0), so that a listing of
// snapshots/<c>/ names the inode numbers without reading a record per
// snapshot. View 0 numbers the directories snapshots/<c>/ (their
// low bits: a hash of the collection's name, the same way). A tree inode
// number of 2^40 or more (a trillion inodes made in files/), or a mount
// that has seen 2^22 views, gets go-fuse's automatic numbers instead.
const (
	snapInoBase   = 3 << 62
	snapViewShift = 40
	snapViewLimit = 1 << 22
	snapEntryMask = 1<<snapViewShift - 1
)

// inoSpace hands out numbers below limit (from 1) for keys: the hash of
// the key when free, else the next free one; the same key always gets
// the same number within the mount.
type inoSpace struct {
	limit uint64

	mu    sync.Mutex        // guards ids and taken; never held during I/O
	ids   map[string]uint64 // key -> number
	taken map[uint64]bool
}

func newInoSpace(limit uint64) *inoSpace {
	return &inoSpace{limit: limit, ids: map[string]uint64{}, taken: map[uint64]bool{}}
}

// number returns key's number, 0 if the space is full.
func (s *inoSpace) number(key string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.numberLocked(key)
}

func (s *inoSpace) numberLocked(key string) uint64 {
	if id, ok := s.ids[key]; ok {
		return id
	}
	if uint64(len(s.taken)) >= s.limit-1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	id := h.Sum64()%(s.limit-1) + 1
	for s.taken[id] {
		id = id%(s.limit-1) + 1
	}
	s.ids[key], s.taken[id] = id, true
	return id
}

// snapInos numbers the inodes under snapshots/.
type snapInos struct {
	collections *inoSpace // snapshots/<c>/
	views       *inoSpace // snapshots/<c>/<name>/
}

func newSnapInos() *snapInos {
	return &snapInos{collections: newInoSpace(snapEntryMask + 1), views: newInoSpace(snapViewLimit)}
}

// collectionIno is the inode number of snapshots/<collection>/, 0 for an
// automatic one.
func (s *snapInos) collectionIno(collection string) uint64 {
	if id := s.collections.number(collection); id != 0 {
		return snapInoBase | id
	}
	return 0
}

// view returns the number of a snapshot's view, 0 if there is none left.
func (s *snapInos) view(collection, name string) uint64 {
	return s.views.number(viewKey(collection, name))
}

// viewsOf numbers the views of many snapshots of a collection at once (a
// listing), taking the lock once.
func (s *snapInos) viewsOf(collection string, names []string) []uint64 {
	s.views.mu.Lock()
	defer s.views.mu.Unlock()
	out := make([]uint64, len(names))
	for i, name := range names {
		out[i] = s.views.numberLocked(viewKey(collection, name))
	}
	return out
}

func viewKey(collection, name string) string { return collection + "\x00" + name }

// viewRootIno is the inode number of a view's root; 0 for an automatic one.
func viewRootIno(view uint64) uint64 {
	if view == 0 {
		return 0
	}
	return snapInoBase | view<<snapViewShift
}

// snapIno is the inode number, in view, of the tree inode ino; 0 for an
// automatic one.
func snapIno(view, ino uint64) uint64 {
	counter := ino &^ metastore.TreeInoBase // the tree's numbers are 01 + a counter
	if view == 0 || counter == 0 || counter > snapEntryMask {
		return 0
	}
	return snapInoBase | view<<snapViewShift | counter
}
