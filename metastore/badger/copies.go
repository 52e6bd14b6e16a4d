package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"syscall"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// CopiesPolicy is how many verified copies each blob of a collection is
// kept on, on distinct volumes: any volumes, or only those listed (by id).
type CopiesPolicy struct {
	Copies  int   `json:"copies"`
	Volumes []int `json:"volumes,omitempty"`
}

// MaxCopies bounds a policy's copies: more than any store has volumes.
const MaxCopies = 64

func (p CopiesPolicy) valid() error {
	if p.Copies < 1 || p.Copies > MaxCopies {
		return fmt.Errorf("copies %d: must be 1 to %d: %w", p.Copies, MaxCopies, syscall.EINVAL)
	}
	for i, v := range p.Volumes {
		if slices.Contains(p.Volumes[:i], v) {
			return fmt.Errorf("volume %d is named twice: %w", v, syscall.EINVAL)
		}
	}
	if len(p.Volumes) > 0 && len(p.Volumes) < p.Copies {
		return fmt.Errorf("%d copies on %d volumes: name at least as many volumes as copies: %w", p.Copies, len(p.Volumes), syscall.EINVAL)
	}
	return nil
}

// defaultCopies is the policy of a store that never set one: one copy.
var defaultCopies = CopiesPolicy{Copies: 1}

// DefaultCopies is the store's policy for the collections without their
// own (setting "copies"; one copy if never set).
func (s *Store) DefaultCopies(ctx context.Context) (CopiesPolicy, error) {
	p := defaultCopies
	err := s.view(func(txn *badgerdb.Txn) error {
		err := getJSON(txn, stringKey(prefixSetting, "copies"), "the copies policy", &p)
		if isNotExist(err) {
			return nil
		}
		return err
	})
	return p, err
}

// SetDefaultCopies sets the store's policy.
func (s *Store) SetDefaultCopies(ctx context.Context, p CopiesPolicy) error {
	if err := p.valid(); err != nil {
		return err
	}
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		if err := volumesExist(txn, p.Volumes); err != nil {
			return err
		}
		return putJSON(txn, stringKey(prefixSetting, "copies"), p)
	})
}

// SetCollectionCopies sets a collection's policy; nil makes it follow the
// store's again.
func (s *Store) SetCollectionCopies(ctx context.Context, name string, p *CopiesPolicy) error {
	if p != nil {
		if err := p.valid(); err != nil {
			return err
		}
	}
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		var c Collection
		if err := getJSON(txn, stringKey(prefixCollection, name), fmt.Sprintf("collection %q", name), &c); err != nil {
			return err
		}
		if p != nil {
			if err := volumesExist(txn, p.Volumes); err != nil {
				return err
			}
		}
		c.Copies = p
		return putJSON(txn, stringKey(prefixCollection, name), c)
	})
}

func volumesExist(txn *badgerdb.Txn, ids []int) error {
	for _, id := range ids {
		var v Volume
		if err := getJSON(txn, volumeIDKey(prefixVolume, id), fmt.Sprintf("volume %d", id), &v); err != nil {
			return err
		}
	}
	return nil
}

// OnBlobNoted registers fn, called with the ref of each blob recorded
// from then on (a new record, not a copy) and of each blob a file's
// content becomes (it may be one stored already, by another collection),
// once the transaction that did it has committed. fn must only note the
// ref (the background replication looks it up later) and must not block.
// nil stops the calls.
func (s *Store) OnBlobNoted(fn func(blobstore.Ref)) {
	s.notes.mu.Lock()
	defer s.notes.mu.Unlock()
	s.notes.fn = fn
	s.notes.byTxn = map[*badgerdb.Txn][]blobstore.Ref{}
}

// blobNotes holds the refs that transactions under way note, until they
// commit (update calls done).
type blobNotes struct {
	mu    sync.Mutex
	fn    func(blobstore.Ref) // nil: nobody listens, and nothing is kept
	byTxn map[*badgerdb.Txn][]blobstore.Ref
}

// note keeps ref for txn's commit.
func (n *blobNotes) note(txn *badgerdb.Txn, ref blobstore.Ref) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fn != nil {
		n.byTxn[txn] = append(n.byTxn[txn], ref)
	}
}

// done calls fn with what txn noted, if it committed.
func (n *blobNotes) done(txn *badgerdb.Txn, committed bool) {
	n.mu.Lock()
	refs, fn := n.byTxn[txn], n.fn
	delete(n.byTxn, txn)
	n.mu.Unlock()
	if committed && fn != nil {
		for _, ref := range refs {
			fn(ref)
		}
	}
}

// FileFolders calls fn with the folder inode (the top directory of its
// collection, files/<name>) of each file whose content is blob ref, as
// the index of the files' blobs (r <ref> <ino>) and the parent pointers
// say; isFolder tells the collections' folders. dirFolder caches the
// folder of each directory met, filled as it goes, for the next call
// (inode numbers are never reused, and nothing moves across collections).
// A file whose parents lead to no folder is skipped. An error from fn is
// returned as it is.
func (s *Store) FileFolders(ctx context.Context, ref blobstore.Ref, isFolder func(uint64) bool, dirFolder map[uint64]uint64, fn func(folder uint64) error) error {
	return s.view(func(txn *badgerdb.Txn) error {
		prefix := append([]byte{prefixRefUse}, ref[:]...)
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			if len(key) != len(prefix)+8 {
				return errBadRecord
			}
			folder, ok := folderOf(txn, binary.BigEndian.Uint64(key[len(prefix):]), isFolder, dirFolder)
			if !ok {
				continue
			}
			if err := fn(folder); err != nil {
				return err
			}
		}
		return nil
	})
}

// folderOf follows ino's parents up to a collection's folder.
func folderOf(txn *badgerdb.Txn, ino uint64, isFolder func(uint64) bool, dirFolder map[uint64]uint64) (uint64, bool) {
	var path []uint64
	found := uint64(0)
	for depth := 0; depth < 4096; depth++ {
		if isFolder(ino) {
			found = ino
			break
		}
		if f, ok := dirFolder[ino]; ok {
			found = f
			break
		}
		parent, err := parentOf(txn, ino)
		if err != nil {
			break
		}
		if depth > 0 {
			path = append(path, ino) // directories only: a file's own ino is not cached
		}
		ino = parent
	}
	if found == 0 {
		return 0, false
	}
	for _, dir := range path {
		dirFolder[dir] = found
	}
	return found, true
}
