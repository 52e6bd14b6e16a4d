package badger

import "time"

// A store that took many writes (a bulk put, a gc, an untar of many
// files) leaves Badger compactions to do: level-0 tables to merge into the
// levels below, levels over their target size. Badger runs them in the
// background while the database is open, and the next open starts them
// again where they stopped: a mount after a million blobs were put spent
// 1.3 s of its first 3.5 s compacting, and its first ls -f of ref/ took
// twice as long as the next ones. So Close lets the compactions due
// finish first, for up to compactionsLimit; the next open then finds the
// levels settled. It does not when the filesystem is short of room
// (compactions write new tables before they remove the old ones), or
// when the store failed (Fail: its disk may be gone).

// compactionsLimit bounds how long Close waits for the compactions due.
const compactionsLimit = 30 * time.Second

// awaitCompactions waits, for up to limit, until no level of the database
// is due for a compaction (every level's score, its size against its
// target or level 0's tables against NumLevelZeroTables, is under 1:
// what Badger's compactors pick). It reports whether they are settled.
func (s *Store) awaitCompactions(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		due := false
		for _, level := range s.db.Levels() {
			due = due || level.Score >= 1
		}
		if !due {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
