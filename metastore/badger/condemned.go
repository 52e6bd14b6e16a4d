package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// The condemned journal (z <volume id u32 BE> <ref 32>, value: the copy's
// stored size, u64 BE) names the blob copies a garbage collection is
// removing from its volumes. Condemn writes an entry for every copy of a
// blob in the transaction that removes the blob from the metadata (its
// record, the volumes' index keys and counts, its blob index mark), so
// that from then on the metadata knows nothing of the blob but that its
// copies are to go: no reader, scrub or dedup can find it, and a copy is
// removed from its volume only after its entry is durable. Whoever
// removes a copy drops its entry after (DropCondemned); a copy that is
// recorded again on its volume in between (a put of the same content)
// drops its entry in the transaction that records it (reprieve), so that
// an entry never outlives the blob's death: what an entry names is never
// a recorded copy.

// CondemnedCopy is a blob copy a garbage collection is removing.
type CondemnedCopy struct {
	Ref    blobstore.Ref
	Volume int
	Size   int64 // stored bytes
}

func condemnedKey(volumeID int, ref blobstore.Ref) []byte {
	return append(volumeIDKey(prefixCondemned, volumeID), ref[:]...)
}

// Keeper tells Condemn what keeps blobs besides the metadata (a mount's
// daemon: the files it has open though unlinked, the blobs it is writing).
// Condemn calls it once in each run of its transaction, after the
// transaction began, so that what it answers is no older than what the
// transaction reads; the function it returns says whether it keeps a ref.
// nil: nothing does.
type Keeper func() (keeps func(blobstore.Ref) bool, err error)

// Condemn removes the blobs refs from the metadata and journals each of
// their copies as condemned, in one transaction: after it the blobs are
// not recorded, and every copy they had is in the condemned journal. A
// ref not recorded is skipped. A blob that something keeps is left as it
// is and returned in kept: an explicit store, a blob a file of files/
// uses (r <ref> <ino>), a file's content that a power loss may put back
// (the journal's content and replaced entries), or one that keeper
// keeps. Those are read in the transaction itself, so that a writer who
// made a blob live after the caller's search for garbage is seen (the
// caller holds the refs' locks, diskaccess.Controller.LockRefs, so that
// no writer records a use of them while it runs: Badger does not see a
// use key added under a prefix it read as a conflict). The other things
// that keep a blob (snapshots, the grace period) are the caller's to have
// checked. The entries are not synced: the caller syncs (Sync) before it
// removes any copy. It returns the copies condemned.
func (s *Store) Condemn(ctx context.Context, refs []blobstore.Ref, keeper Keeper) (copies []CondemnedCopy, kept []blobstore.Ref, err error) {
	err = s.update(func(txn *badgerdb.Txn) error {
		copies, kept = copies[:0], kept[:0]
		keeps, err := condemnKeeps(ctx, txn, keeper)
		if err != nil {
			return err
		}
		// Every read before the first write: an iterator of a read-write
		// transaction sorts the transaction's writes when it is made.
		var condemned []*blobRecord
		for _, ref := range refs {
			record, err := getRecord(txn, ref)
			if isNotExist(err) {
				continue
			}
			if err != nil {
				return err
			}
			if record.Explicit || usedByFile(txn, ref) || keeps(ref) {
				kept = append(kept, ref)
				continue
			}
			condemned = append(condemned, record)
		}
		removed := map[int]CondemnedTotal{} // per volume, for its counts
		for _, record := range condemned {
			if err := condemnRecord(txn, record, removed, &copies); err != nil {
				return err
			}
		}
		for id, sum := range removed {
			if err := addCounts(txn, id, -sum.Copies, -sum.Bytes); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return copies, kept, nil
}

// condemnRecord removes record and journals its copies, in txn.
func condemnRecord(txn *badgerdb.Txn, record *blobRecord, removed map[int]CondemnedTotal, copies *[]CondemnedCopy) error {
	ref := record.Ref
	for _, id := range record.Volumes {
		size := binary.BigEndian.AppendUint64(nil, uint64(record.SizeOnDisk))
		if err := txn.Set(condemnedKey(id, ref), size); err != nil {
			return err
		}
		if err := txn.Delete(volumeBlobKey(id, ref)); err != nil {
			return err
		}
		sum := removed[id]
		sum.Copies, sum.Bytes = sum.Copies+1, sum.Bytes+record.SizeOnDisk
		removed[id] = sum
		*copies = append(*copies, CondemnedCopy{Ref: ref, Volume: id, Size: record.SizeOnDisk})
	}
	if err := txn.Delete(indexMarkKey(record.EncryptionKeyId, ref)); err != nil {
		return err
	}
	return txn.Delete(blobKey(ref))
}

// condemnKeeps is what keeps blobs in txn beyond records and files: the
// contents the journal may put back (few: those since the last group
// commit), then keeper's.
func condemnKeeps(ctx context.Context, txn *badgerdb.Txn, keeper Keeper) (func(blobstore.Ref) bool, error) {
	journaled := map[blobstore.Ref]bool{}
	err := eachJournalEntry(ctx, txn, func(key, value []byte) error {
		switch {
		case key[1] == journalContent && len(key) == 2+8:
			entry, err := decodeContentEntry(binary.BigEndian.Uint64(key[2:]), value)
			if err != nil {
				return err
			}
			journaled[entry.Durable.Ref] = true
			if entry.Newer != nil {
				journaled[entry.Newer.Ref] = true
			}
		case key[1] == journalReplaced:
			entry, err := decodeReplaced(key, value)
			if err != nil {
				return err
			}
			if entry.Replaced != nil {
				journaled[entry.Replaced.Ref] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var held func(blobstore.Ref) bool
	if keeper != nil {
		if held, err = keeper(); err != nil {
			return nil, err
		}
	}
	return func(ref blobstore.Ref) bool { return journaled[ref] || held != nil && held(ref) }, nil
}

// usedByFile reports whether a file of files/ uses ref (a key r <ref>
// <ino>). An iterator of its own for each ref, bounded by the ref's
// prefix: one iterator over all of r for the batch would cost less to
// make, but each of its seeks walks every deleted key after the ref
// (a tree just removed leaves one per file) to the end of r, which made
// a batch's condemning quadratic beside a mount.
func usedByFile(txn *badgerdb.Txn, ref blobstore.Ref) bool {
	prefix := append([]byte{prefixRefUse}, ref[:]...)
	uses := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
	defer uses.Close()
	uses.Rewind()
	return uses.Valid()
}

// CondemnedOn calls fn with up to limit condemned copies on volumeID, in
// ascending ref order, after the ref after (zero: from the first). It
// returns the copies read; fewer than limit: there are no more.
func (s *Store) CondemnedOn(ctx context.Context, volumeID int, after blobstore.Ref, limit int) ([]CondemnedCopy, error) {
	prefix := volumeIDKey(prefixCondemned, volumeID)
	var copies []CondemnedCopy
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		start := prefix
		if !after.IsZero() {
			start = append(condemnedKey(volumeID, after), 0)
		}
		for it.Seek(start); it.Valid() && len(copies) < limit; it.Next() {
			c, err := decodeCondemned(it.Item())
			if err != nil {
				return err
			}
			copies = append(copies, c)
		}
		return nil
	})
	return copies, err
}

func decodeCondemned(item *badgerdb.Item) (CondemnedCopy, error) {
	key := item.Key()
	var c CondemnedCopy
	if len(key) != 1+4+blobstore.RefSize {
		return c, fmt.Errorf("condemned entry %x: %w", key, errBadRecord)
	}
	c.Volume = int(binary.BigEndian.Uint32(key[1:5]))
	c.Ref = blobstore.Ref(key[5:])
	err := item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("condemned entry %x: %w", key, errBadRecord)
		}
		c.Size = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return c, err
}

// CondemnedTotal counts the copies the condemned journal names on a
// volume, and their stored bytes.
type CondemnedTotal struct {
	Copies int64
	Bytes  int64
}

// CondemnedCounts returns what the condemned journal names on each
// volume.
func (s *Store) CondemnedCounts(ctx context.Context) (map[int]CondemnedTotal, error) {
	counts := map[int]CondemnedTotal{}
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixCondemned}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			c, err := decodeCondemned(it.Item())
			if err != nil {
				return err
			}
			sum := counts[c.Volume]
			sum.Copies++
			sum.Bytes += c.Size
			counts[c.Volume] = sum
		}
		return nil
	})
	return counts, err
}

// IsCondemned reports whether the copy of ref on volumeID is in the
// condemned journal.
func (s *Store) IsCondemned(ctx context.Context, volumeID int, ref blobstore.Ref) (bool, error) {
	var found bool
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		found, err = exists(txn, condemnedKey(volumeID, ref))
		return err
	})
	return found, err
}

// Recorded reports whether blob ref is recorded on volumeID: a condemned
// copy that is must not be removed (it was stored again since).
func (s *Store) Recorded(ctx context.Context, ref blobstore.Ref, volumeID int) (bool, error) {
	var found bool
	err := s.view(func(txn *badgerdb.Txn) error {
		record, err := getRecord(txn, ref)
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		found = slices.Contains(record.Volumes, volumeID)
		return nil
	})
	return found, err
}

// DropCondemned removes the entries of copies from the condemned journal,
// in one transaction, unsynced: an entry that comes back after a power
// loss names a copy removed already, which is removed again (not there:
// no error). An entry that is not there is no error.
func (s *Store) DropCondemned(ctx context.Context, copies []CondemnedCopy) error {
	return s.update(func(txn *badgerdb.Txn) error {
		for _, c := range copies {
			if err := txn.Delete(condemnedKey(c.Volume, c.Ref)); err != nil {
				return err
			}
		}
		return nil
	})
}

// reprieve drops, in txn, the condemned entry of ref's copy on volumeID,
// if there is one: the copy is being recorded again (stored again, or
// replicated), and its volume holds it, or will once the caller's write
// is durable, so nothing may remove it any more.
func reprieve(txn *badgerdb.Txn, volumeID int, ref blobstore.Ref) error {
	key := condemnedKey(volumeID, ref)
	found, err := exists(txn, key)
	if err != nil || !found {
		return err
	}
	return txn.Delete(key)
}

// Sync makes every transaction committed before it durable: Condemn's
// caller syncs before it removes what was condemned.
func (s *Store) Sync(ctx context.Context) error { return s.syncDB() }
