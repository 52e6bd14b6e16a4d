package badger

import (
	"context"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// Commit is a group commit: it makes durable every blob stored and every
// metadata write made before it was called, and removes their journal
// entries. syncVolumes is the caller's: it must Sync the driver of every
// mounted volume (nil: there is none). Commits take turns.
//
// In order:
//
//  1. the generation moves on: entries written from now carry cur+1;
//  2. syncVolumes: every blob published before it started is durable;
//  3. the database is synced: every record written before is durable;
//  4. the journal entries of generations up to cur (of this Open) are
//     removed, unsynced: a removal lost to a power loss only means that
//     the next open checks that blob or file again.
//
// Why an entry of generation <= cur may go: a record's transaction reads
// the generation after the caller published the blob to its driver
// (BlobWriter.Commit and CommitWith publish, then record), and a file's
// content is committed after its blob is recorded, or in the same
// transaction (CommitNewContent). So an entry stamped cur or less
// was written by a transaction that read the generation before step 1,
// of a blob published before step 2 began, which that Sync covers; and
// the transaction itself committed before step 4 read it, which step 3
// may not cover, but then it is the record that a power loss takes back,
// with its entry, never the blob under a surviving record. An entry
// written while Commit runs carries cur+1 and stays for the next one.
//
// If syncVolumes or the database's sync fails, no entry is removed and
// the error is returned: the next Commit tries again, and covers them.
func (s *Store) Commit(ctx context.Context, syncVolumes func(context.Context) error) error {
	s.journal.commitMu.Lock()
	defer s.journal.commitMu.Unlock()
	cur := s.journal.generation.Add(1) - 1
	if syncVolumes != nil {
		if err := syncVolumes(ctx); err != nil {
			return fmt.Errorf("group commit: %w", err)
		}
	}
	if err := s.syncDB(); err != nil {
		return fmt.Errorf("group commit: %w", err)
	}
	err := s.dropJournal(ctx, s.journal.base, cur)
	if errors.As(err, new(*NoSpaceError)) {
		// What was committed is durable; the entries left go at a later
		// Commit, once there is room (a removal lost costs only a check).
		return nil
	}
	return err
}

// journalBatch is how many journal entries one transaction removes.
const journalBatch = 1000

// dropJournal removes the journal entries whose generation is in [from,
// to]. Each is read again in the transaction that removes it, so that an
// entry rewritten meanwhile with a newer generation (or a transaction
// rewriting it) is kept: the two conflict, and the loser runs again.
func (s *Store) dropJournal(ctx context.Context, from, to uint64) error {
	var keys, replaced [][]byte
	err := s.view(func(txn *badgerdb.Txn) error {
		return eachJournalEntry(ctx, txn, func(key, value []byte) error {
			gen, err := decodeGeneration(value)
			if err != nil || gen < from || gen > to {
				return nil
			}
			if _, ok := replacedKeyMoving(key); ok {
				replaced = append(replaced, append([]byte(nil), key...))
			} else {
				keys = append(keys, append([]byte(nil), key...))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for start := 0; start < len(keys); start += journalBatch {
		batch := keys[start:min(start+journalBatch, len(keys))]
		err := s.updateHousekeeping(func(txn *badgerdb.Txn) error {
			for _, key := range batch {
				if err := dropIfIn(txn, key, from, to); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.dropReplaced(replaced, from, to)
}

// dropIfIn removes, in txn, the journal entry under key if its generation
// is (still) in [from, to].
func dropIfIn(txn *badgerdb.Txn, key []byte, from, to uint64) error {
	value, err := getCopy(txn, key, "journal entry")
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if gen, err := decodeGeneration(value); err != nil || gen < from || gen > to {
		return nil
	}
	return txn.Delete(key)
}
