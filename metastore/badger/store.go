// Package badger is stofuse's metadata store on dgraph-io/badger/v4: which
// blobs exist and on which volumes, the volumes and collections of a store,
// and the collections' data keys, sealed in envelopes.
//
// Each write is one transaction, retried on conflict. Writes are not
// synced one by one (SyncWrites off): a transaction that returned is in
// Badger's memory-mapped logs, so it survives the death of the process,
// and it survives a power loss once the database is synced: by a group
// commit (Commit, commit.go), by a write that must be durable at once
// (updateDurable, durable.go), or by Close. What a power loss may undo is
// kept in a journal (journal.go), which Settle checks after an unclean
// stop. Values are copied out of transactions. The value log is
// garbage-collected in the background until Close.
//
// Badger lets one process open a database; a second Open of the same
// directory fails with ErrStoreBusy.
package badger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/stofuse/stofuse/keyring"
)

// ErrStoreBusy: another process has the store open.
var ErrStoreBusy = errors.New("store is in use by another stofuse process")

// Store is the Badger-backed metadata store.
type Store struct {
	db  *badgerdb.DB
	dir string

	keysMu  sync.RWMutex  // guards rootKey and ring
	rootKey []byte        // the raw root key; nil until Unlock or Initialize
	ring    *keyring.Ring // unlocked data keys; nil until Unlock or Initialize

	inoMu   sync.Mutex // guards inoNext and inoEnd
	inoNext uint64     // the next tree inode number of the claimed block
	inoEnd  uint64     // the end of the claimed block

	lastStamp atomic.Uint64 // the last directory stamp handed out (tree_stamp.go)

	journal journalState // the generations of the journal, and Commit's turns (journal.go, commit.go)

	gcStop chan struct{}
	gcDone chan struct{}

	keysChanged func() error // called after the envelopes change (keys_export.go)

	notes blobNotes // OnBlobNoted's (copies.go)

	// readOnly: opened with OpenReadOnly (readonly.go); private is then
	// the private copy of the database opened instead ("" if none), and
	// privateInUse its lock (readonly.go), and sharedLock the shared
	// lock held on the original.
	readOnly     bool
	private      string
	privateInUse *os.File
	sharedLock   *os.File

	failed atomic.Pointer[error] // set by Fail (fail.go): every read and write fails with it

	space *spaceGuard // keeps Badger from a full filesystem (space.go); nil when read-only
	wrote atomic.Bool // a write transaction ran since Open (Close must flush)

	closeOnce sync.Once
	closeErr  error
}

// Options sized for a daemon that must stay small: stofuse's values are a
// few dozen bytes, so large memtables and caches buy little.
//
// Tables are not compressed (keys are mostly refs, which do not
// compress): Badger then reads a block straight from the table's memory
// map, where a compressed one is decompressed into the Go heap and kept
// in a block cache, and a table builder (a memtable's flush, every table
// a compaction writes) holds its blocks once, not also compressed. With
// Snappy and a 32 MiB block cache, the block cache and the builders'
// second copies were some 40 MiB of the daemon's heap during a gc of
// 500,000 blobs. Without compression neither cache has anything to hold
// (the index cache serves encrypted tables only), so there is none. A
// table written compressed before keeps its compression (the MANIFEST
// records it) until a compaction rewrites it, and its blocks are
// decompressed at each read until then.
//
// Every table is of 1 MiB (BaseTableSize, and TableSizeMultiplier 1:
// Badger's default is 2 MiB at the base level, twice as much at each
// level below). A compaction writes its tables in parallel, up to 8 and
// one a split at once (Badger's own limit), each in a builder that starts
// at twice its table's size and holds all of it until the table is
// written and synced; during a gc's burst of writes those builders were
// most of the daemon's heap (56 MB of 106 at a gc of 500,000 blobs, with
// 2 to 8 MiB tables).
func badgerOptions(dir string) badgerdb.Options {
	opts := badgerdb.DefaultOptions(dir).
		WithSyncWrites(false). // synced by Commit and updateDurable
		WithLogger(nil).
		WithMemTableSize(memTableSize). // see space.go
		WithNumMemtables(2).
		WithNumLevelZeroTables(numLevelZeroTables).
		WithNumLevelZeroTablesStall(8).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithBaseTableSize(1 << 20).
		WithMetricsEnabled(false)
	opts.TableSizeMultiplier = 1 // no With for it
	return opts
}

// numLevelZeroTables is how many level-0 tables start a compaction of
// level 0 (badgerOptions).
const numLevelZeroTables = 2

// Open opens (creating if needed) the store in dir.
// A damaged database is a *DamagedError (ErrDamaged), found before
// Badger opens it, so that nothing in dir is changed.
func Open(dir string) (*Store, error) { return open(dir, newSpaceGuard(dir)) }

// open opens the store in dir for writing, guarded by space (nil: not
// guarded, for a private copy in a scratch directory).
func open(dir string, space *spaceGuard) (*Store, error) {
	if err := checkDir(dir); err != nil {
		if errors.Is(err, ErrDamaged) && isLocked(dir) {
			// Another process has it open and may be changing it as it was
			// read: not damage.
			return nil, fmt.Errorf("%s: %w (a running mount?)", dir, ErrStoreBusy)
		}
		return nil, err
	}
	space.beforeOpen()
	if err := replayLogs(dir); err != nil {
		return nil, err
	}
	db, err := openBadger(dir, badgerOptions(dir))
	if err != nil {
		return nil, err
	}
	space.start()
	s := &Store{db: db, dir: dir, gcStop: make(chan struct{}), gcDone: make(chan struct{}), space: space}
	for _, step := range []func() error{s.migrateTreeIndex, s.migrateExplicitStores, s.migrateDirLinks, s.openJournal} {
		if err := step(); err != nil {
			close(s.gcDone) // no value-log GC was started
			s.Close()
			return nil, err
		}
	}
	go s.collectGarbage(10 * time.Minute)
	return s, nil
}

// Close stops the value-log GC, lets the compactions due finish (after
// writes, for a while: compactions.go), and closes the database (and
// removes the private copy a read-only open made). A second Close does
// nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.gcStop)
		<-s.gcDone
		if err := s.space.beforeClose(); err != nil && s.wrote.Load() {
			s.closeErr = s.abandon(err)
			return
		}
		if s.wrote.Load() && !s.readOnly && s.failure() == nil && s.space.check() == nil {
			s.awaitCompactions(compactionsLimit) // compactions.go
		}
		s.closeErr = s.db.Close()
		s.space.afterClose()
		if s.readOnly {
			s.closeErr = errors.Join(s.closeErr, s.closeReadOnly())
		}
	})
	return s.closeErr
}

// abandon is Close on a filesystem too full for Badger's Close (why): the
// logs are synced, and the database is left open, its directory locked
// until the process exits; the next Open replays the logs.
func (s *Store) abandon(why error) error {
	if err := s.syncDB(); err != nil {
		return fmt.Errorf("the metadata store %s is not closed (%v), and syncing its logs failed: %w", s.dir, why, err)
	}
	return fmt.Errorf("the metadata store %s is left open, not closed: %w. What was written is in its logs, synced, "+
		"which the next open replays; until this process exits, it cannot be opened again", s.dir, why)
}

// Dir is the database directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) collectGarbage(every time.Duration) {
	defer close(s.gcDone)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-s.gcStop:
			return
		case <-ticker.C:
			// Each successful run rewrites one value-log file; stop at the
			// first that finds nothing worth rewriting.
			for s.db.RunValueLogGC(0.5) == nil {
				select {
				case <-s.gcStop:
					return
				default:
				}
			}
		}
	}
}

// maxRetries bounds how often a transaction that lost a conflict is re-run.
const maxRetries = 20

// update runs fn in a read-write transaction, re-running it when it
// conflicts with a concurrent one. The transaction is not synced: it
// survives a crash of the process at once, a power loss from the next
// Commit on (see updateDurable for what cannot wait).
func (s *Store) update(fn func(txn *badgerdb.Txn) error) error {
	return s.updateChecked(fn, s.space.check)
}

// updateHousekeeping is update for what only removes what earlier writes
// left (the journal's entries, after a Commit): on a nearly full
// filesystem it goes on, its few deletions within the headroom, so that
// the store is left clean; it waits only for the memtable logs.
func (s *Store) updateHousekeeping(fn func(txn *badgerdb.Txn) error) error {
	return s.updateChecked(fn, s.space.checkLogs)
}

func (s *Store) updateChecked(fn func(txn *badgerdb.Txn) error, roomToWrite func() error) error {
	if err := s.failure(); err != nil {
		return err
	}
	if err := s.ensureWritable(); err != nil {
		return err
	}
	if err := roomToWrite(); err != nil {
		return err
	}
	s.wrote.Store(true)
	for attempt := 0; ; attempt++ {
		var current *badgerdb.Txn
		err := s.db.Update(func(txn *badgerdb.Txn) error {
			current = txn
			return fn(txn)
		})
		s.notes.done(current, err == nil) // OnBlobNoted's calls, once committed
		if !errors.Is(err, badgerdb.ErrConflict) || attempt == maxRetries {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

func (s *Store) view(fn func(txn *badgerdb.Txn) error) error {
	if err := s.failure(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// getCopy returns a copy of the value under key, or an fs.ErrNotExist error.
func getCopy(txn *badgerdb.Txn, key []byte, what string) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return nil, fmt.Errorf("%s: %w", what, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func exists(txn *badgerdb.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// State reads a named JSON record the CLI keeps in the store (a scrub's
// progress, say) into value; a record never written is fs.ErrNotExist.
func (s *Store) State(ctx context.Context, name string, value any) error {
	return s.view(func(txn *badgerdb.Txn) error {
		return getJSON(txn, stringKey(prefixSetting, "state/"+name), "state "+name, value)
	})
}

// SetState writes a named JSON record (see State), durably.
func (s *Store) SetState(ctx context.Context, name string, value any) error {
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		return putJSON(txn, stringKey(prefixSetting, "state/"+name), value)
	})
}
