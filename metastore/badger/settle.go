package badger

import (
	"context"
	"fmt"
	"slices"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// CopyState is what a check of a journaled blob copy found.
type CopyState int

const (
	// CopyIntact: the volume holds the blob with the recorded size and
	// CRC-32C.
	CopyIntact CopyState = iota
	// CopyMissing: the volume does not hold it.
	CopyMissing
	// CopyDamaged: the volume holds other bytes (a blob cut short).
	CopyDamaged
	// CopyUnchecked: it could not be checked (the volume is not mounted,
	// or the check failed): its entry is left for the next open.
	CopyUnchecked
)

func (c CopyState) String() string {
	return [...]string{"intact", "missing", "damaged", "unchecked"}[c]
}

// CopyCheck checks, without a key, the copy on volume of the blob meta
// describes.
type CopyCheck func(ctx context.Context, meta *diskaccess.BlobMeta, volume int) (CopyState, error)

// FileOutcome is what Settle did with a journaled file.
type FileOutcome int

const (
	// FileKept: its content is intact; nothing changed.
	FileKept FileOutcome = iota
	// FileReverted: its content was lost, and it has the content it had
	// before again.
	FileReverted
	// FileRemoved: its content was lost and it had none before (a new
	// file), or that was lost too: it was removed from the tree.
	FileRemoved
	// FileGone: it was removed since; nothing to do.
	FileGone
	// FileUnchecked: its content's blob could not be checked; its entry
	// is left for the next open.
	FileUnchecked
)

func (f FileOutcome) String() string {
	return [...]string{"kept", "reverted", "removed", "gone", "unchecked"}[f]
}

// SettledBlob is a journaled blob copy and what its check found.
type SettledBlob struct {
	Ref    blobstore.Ref
	Volume int
	State  CopyState
	Err    error // why it is unchecked (nil: the volume is not mounted), or what the check said
	// Dropped: no volume holds the blob any more, and its record was
	// removed.
	Dropped bool
}

// SettledFile is a journaled file and what was done with it.
type SettledFile struct {
	Ino     uint64
	Path    string // collection/dir/name before Settle; "" for the files kept or gone
	Outcome FileOutcome
	Lost    blobstore.Ref // the content that was lost (FileReverted, FileRemoved)
	Content Content       // the content it has again (FileReverted)
	// Restored are the files it had replaced by a rename, back under
	// their names (FileRemoved): the new file renamed over an old one
	// is lost, the old one is not.
	Restored []string
}

// SettleResult is what Settle found and did.
type SettleResult struct {
	// Clean: the journal was empty (the last stop was clean); nothing was
	// checked.
	Clean bool
	Blobs []SettledBlob
	Files []SettledFile
}

// Settle checks, after an unclean stop, what the journal says may not be
// durable, and makes the metadata agree with what survived: a blob copy
// that is missing or damaged is removed from its record (the record
// itself when no volume holds the blob any more); a file whose content's
// blob is no longer recorded gets back the newest content of its entry
// whose blob is (its newer content, else its durable one), or, if there
// is none (a new file), is removed from the tree, and a file it replaced
// by a rename comes back under its name. Then the journal
// entries dealt with are removed and the database synced. Entries whose
// blob could not be checked (CopyUnchecked) stay, and so do the entries
// of the files whose content is such a blob: the next Settle checks them.
//
// It must run before anything else uses the store (store.Open runs it
// once the volumes are mounted). Run again after a failure half-way, it
// finds what is left and does the rest: each blob and each file is
// settled in one transaction, with the removal of its entry.
func (s *Store) Settle(ctx context.Context, check CopyCheck) (*SettleResult, error) {
	j, err := s.Journal(ctx)
	if err != nil {
		return nil, err
	}
	if j.Empty() {
		return &SettleResult{Clean: true}, nil
	}
	result := &SettleResult{}
	unchecked := map[blobstore.Ref]bool{}
	for _, b := range j.Blobs {
		settled, err := s.settleBlob(ctx, b, check)
		if err != nil {
			return nil, fmt.Errorf("settling blob %s on volume %d: %w", b.Ref, b.Volume, err)
		}
		if settled.State == CopyUnchecked {
			unchecked[b.Ref] = true
		}
		result.Blobs = append(result.Blobs, settled)
	}
	if result.Files, err = s.settleFiles(ctx, j, unchecked); err != nil {
		return nil, err
	}
	if err := s.syncDB(); err != nil {
		return nil, err
	}
	return result, nil
}

// settleBlob checks one journaled copy and removes it from the record if
// it did not survive.
func (s *Store) settleBlob(ctx context.Context, b PendingBlob, check CopyCheck) (SettledBlob, error) {
	settled := SettledBlob{Ref: b.Ref, Volume: b.Volume, State: CopyIntact}
	var record *blobRecord
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		record, err = getRecord(txn, b.Ref)
		return err
	})
	switch {
	case isNotExist(err):
		record = nil
	case err != nil:
		return settled, err
	}
	if record != nil && slices.Contains(record.Volumes, b.Volume) {
		settled.State, settled.Err = check(ctx, &record.BlobMeta, b.Volume)
	}
	key := journalBlobKey(b.Ref, b.Volume)
	if settled.State == CopyUnchecked {
		return settled, s.update(func(txn *badgerdb.Txn) error { return leaveEntry(txn, key) })
	}
	err = s.update(func(txn *badgerdb.Txn) (err error) {
		settled.Dropped = false
		if settled.State == CopyMissing || settled.State == CopyDamaged {
			if settled.Dropped, err = removeCopy(txn, b.Ref, b.Volume); err != nil {
				return err
			}
		}
		return txn.Delete(key)
	})
	return settled, err
}

// leaveEntry marks, in txn, a journal entry Settle leaves for the next
// one: generation 0, which no Commit removes (every Open's start at 1 or
// later).
func leaveEntry(txn *badgerdb.Txn, key []byte) error {
	value, err := getCopy(txn, key, "journal entry")
	if err != nil {
		return err
	}
	if len(value) < 8 {
		return fmt.Errorf("journal entry %x: %w", key, errBadRecord)
	}
	clear(value[:8])
	return txn.Set(key, value)
}

// removeCopy removes, in txn, volumeID from blob ref's record, with the
// volume's index key and counts; the record itself, and its index mark,
// when no volume is left. It reports whether the record was removed.
func removeCopy(txn *badgerdb.Txn, ref blobstore.Ref, volumeID int) (dropped bool, err error) {
	record, err := getRecord(txn, ref)
	if isNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	i := slices.Index(record.Volumes, volumeID)
	if i < 0 {
		return false, nil
	}
	record.Volumes = slices.Delete(record.Volumes, i, i+1)
	if err := txn.Delete(volumeBlobKey(volumeID, ref)); err != nil {
		return false, err
	}
	if err := addCounts(txn, volumeID, -1, -record.SizeOnDisk); err != nil {
		return false, err
	}
	if len(record.Volumes) > 0 {
		return false, txn.Set(blobKey(ref), encodeRecord(record))
	}
	// A mark of a record that is gone indexes nothing (IndexChanges skips
	// it); removed so that it does not linger.
	if err := txn.Delete(indexMarkKey(record.EncryptionKeyId, ref)); err != nil {
		return false, err
	}
	return true, txn.Delete(blobKey(ref))
}
