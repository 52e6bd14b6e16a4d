package badger

import (
	"fmt"
	"strings"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// A memtable log that an unclean stop left (a .mem file that is not
// empty) is replayed by the next open into a memtable of that open's
// size; Badger allocates the memtable's arena whole, and a log written
// by a larger memtable does not fit in it (Badger panics: "Arena too
// small"). A store last used by a stofuse with 16 MiB memtables, or
// killed during a replay, may leave such a log, and nothing in the log
// says the size that wrote it. So such logs are replayed first with the
// largest memtables any stofuse has used (replayMemTableSize), by an
// open that is closed at once: Close writes what they held into
// tables, and removes them. The store is then opened with memTableSize.

// replayLogs replays the memtable logs left in dir, if any (see above).
func replayLogs(dir string) error {
	if !hasMemtableLogs(dir) {
		return nil
	}
	db, err := openBadger(dir, badgerOptions(dir).WithMemTableSize(replayMemTableSize))
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("metadata store %s: writing the memtable logs an unclean stop left into tables: %w", dir, err)
	}
	return nil
}

// hasMemtableLogs says whether dir holds a memtable log that is not
// empty: what a Badger that did not close left. (A closed Badger removes
// its logs; the guard's log made ahead is empty.)
func hasMemtableLogs(dir string) bool {
	newest, _, err := newestMemtableLog(dir) // an error: Badger's open says why
	return err == nil && newest >= 0
}

// openBadger opens the database in dir with opts; a directory another
// process holds is ErrStoreBusy.
func openBadger(dir string, opts badgerdb.Options) (*badgerdb.DB, error) {
	db, err := badgerdb.Open(opts)
	if err == nil {
		return db, nil
	}
	if strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return nil, fmt.Errorf("%s: %w (a running mount?)", dir, ErrStoreBusy)
	}
	what := "open metadata store"
	if opts.ReadOnly {
		what += " read-only"
	}
	return nil, fmt.Errorf("%s %s: %w", what, dir, err)
}
