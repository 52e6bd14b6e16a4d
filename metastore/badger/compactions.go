package badger

import (
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// A store that took many writes (a bulk put, a gc, an untar of many
// files) leaves Badger compactions to do: level-0 tables to merge into the
// levels below, levels over their target size. Badger runs them in the
// background while the database is open, and the next open starts them
// again where they stopped: a mount after a million blobs were put spent
// 1.3 s of its first 3.5 s compacting, and its first ls -f of ref/ took
// twice as long as the next ones. So Close lets the compactions due
// finish first, for up to compactionsLimit; the next open then finds the
// levels settled but for what Close's own flush of the memtable leaves
// (a table in level 0, which a compaction may still take into the level
// below before Close stops the compactors: Badger has no call that
// flushes the memtable before). It does not when the filesystem is
// short of room (compactions write new tables before they remove the
// old ones), or when the store failed (Fail: its disk may be gone).

// compactionsLimit bounds how long Close waits for the compactions due.
const compactionsLimit = 30 * time.Second

// awaitCompactions waits, for up to limit, until no level of the database
// is due for a compaction, and none is under way. It reports whether they
// are settled.
func (s *Store) awaitCompactions(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for compactionsDue(s.db.Levels()) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// compactionsDue says whether levels (Badger's) hold a level that a
// compactor picks, or one that a compaction still reads: level 0 with
// numLevelZeroTables tables, or a level between it and the last that is
// not smaller than its target. (Badger's own Score leaves out the
// tables of a compaction under way, which its end adds to the level
// below: a level may be due again once it ends.) The last level's
// target is its size: it is never due.
func compactionsDue(levels []badgerdb.LevelInfo) bool {
	for i, level := range levels {
		switch {
		case i == 0 && level.NumTables >= numLevelZeroTables:
			return true
		case i > 0 && i < len(levels)-1 && level.Size > 0 && level.Size >= level.TargetSize:
			return true
		}
	}
	return false
}
