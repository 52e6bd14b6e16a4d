package badger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// Most writes wait for the next Commit to be synced (the tree, the blob
// records: see commit.go). These must be durable when they return,
// whatever happens next, and call updateDurable:
//
//   - the key envelopes, the root key and the KDF parameters (Initialize,
//     AddKEK, ImportKeys, a new collection's data key): blobs sealed with a
//     key may become durable at any Sync, and a lost envelope would make
//     them unreadable;
//   - the collections (CreateCollectionFolder, RemoveCollectionFolder) and
//     the registered volumes (AddVolume): the volumes already hold their
//     descriptors and key envelopes;
//   - the claim of a block of inode numbers (newIno): a claim lost while
//     inodes numbered from it survive would hand the numbers out twice;
//   - the named states (SetState): a snapshot's last record, which the
//     next snapshot chains to and whose index marks are cleared after it;
//     a scrub's position;
//   - the migration of the tree index (migrateTreeIndex), and a restored
//     tree (Restorer.Finish): the setting that says it is done must never
//     be durable without what it says is done;
//   - what settling an unclean stop changed (Settle).
//
// The blob index marks (blob_index.go) need no sync: a mark is written in
// the transaction of the record it marks, and a lost ClearIndexChanges
// only indexes the blob again.

// updateDurable is update, then a sync of the database: what fn wrote is
// durable when it returns nil.
func (s *Store) updateDurable(fn func(txn *badgerdb.Txn) error) error {
	if err := s.update(fn); err != nil {
		return err
	}
	return s.syncDB()
}

// syncDB makes every transaction committed before it durable.
//
// Badger's DB.Sync syncs the active memtable's log and the newest value
// log only. A memtable that filled up is handed to a flush with its log
// unsynced (SyncWrites off), and until its table is written (msynced, and
// its log deleted) its entries live only in that log; a value log that
// filled up is likewise left unsynced. So syncDB also fsyncs the older
// logs still in the directory: normally there are none, or one.
func (s *Store) syncDB() error {
	if err := s.failure(); err != nil {
		return err
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("syncing the metadata: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("syncing the metadata: %w", err)
	}
	for _, ext := range []string{".mem", ".vlog"} {
		for _, name := range olderLogs(entries, ext) {
			if err := syncFile(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("syncing the metadata: %w", err)
			}
		}
	}
	return nil
}

// olderLogs returns the names of the logs with extension ext (Badger's
// <number><ext>) but the newest, which DB.Sync syncs. A newer one made
// after DB.Sync returned is listed too: then the one DB.Sync synced is
// among the older, and synced again, which is harmless.
func olderLogs(entries []os.DirEntry, ext string) []string {
	var names []string
	newest, newestName := -1, ""
	for _, e := range entries {
		number, ok := strings.CutSuffix(e.Name(), ext)
		id, err := strconv.Atoi(number)
		if !ok || err != nil {
			continue
		}
		if id > newest {
			if newestName != "" {
				names = append(names, newestName)
			}
			newest, newestName = id, e.Name()
		} else {
			names = append(names, e.Name())
		}
	}
	return names
}

// syncFile fsyncs a file by name; one deleted meanwhile (a flushed
// memtable's log) is no error: its entries are in a synced table.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
