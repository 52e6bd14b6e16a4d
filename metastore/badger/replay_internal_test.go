package badger

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// TestReplayLargerMemtableLog: a store killed while a 16 MiB memtable
// (the size stofuse used before) held more than an 8 MiB one can (a log
// Badger panics on when it replays it into a memtable of memTableSize)
// opens, for writing and read-only, with every entry; after the open
// for writing, no log of the old size is left.
func TestReplayLargerMemtableLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	old, err := badgerdb.Open(badgerOptions(dir).WithMemTableSize(replayMemTableSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })
	const entries, perTxn = 50_000, 1_000
	value := bytes.Repeat([]byte("v"), 200)
	key := func(i int) []byte { return fmt.Appendf(nil, "test/%08d", i) }
	for start := 0; start < entries; start += perTxn {
		err := old.Update(func(txn *badgerdb.Txn) error {
			for i := start; i < start+perTxn; i++ {
				if err := txn.Set(key(i), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// All of it in the one memtable's log, beyond what 8 MiB holds.
	if n, size, err := newestMemtableLog(dir); err != nil || n != 1 || size != 2*replayMemTableSize {
		t.Fatalf("memtable log %d of %d bytes (%v): want the first, of %d", n, size, err, 2*replayMemTableSize)
	}

	check := func(s *Store) {
		t.Helper()
		err := s.view(func(txn *badgerdb.Txn) error {
			for i := range entries {
				item, err := txn.Get(key(i))
				if err != nil {
					return fmt.Errorf("%s: %w", key(i), err)
				}
				got, err := item.ValueCopy(nil)
				if err != nil || !bytes.Equal(got, value) {
					return fmt.Errorf("%s: %q, %v", key(i), got, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// What a kill -9 leaves: the files as they are now.
	killed := crashCopy(t, dir)
	ro, err := OpenReadOnly(killed, t.TempDir())
	if err != nil {
		t.Fatalf("read-only open after the kill: %v", err)
	}
	check(ro)
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(killed)
	if err != nil {
		t.Fatalf("open after the kill: %v", err)
	}
	check(s)
	logs, _ := filepath.Glob(filepath.Join(killed, "*.mem"))
	for _, log := range logs {
		if info, err := os.Stat(log); err == nil && info.Size() > memtableLogSize {
			t.Errorf("a memtable log of %d bytes is left after the open: %s", info.Size(), log)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if hasMemtableLogs(killed) {
		t.Error("memtable logs are left after Close")
	}
	s, err = Open(killed)
	if err != nil {
		t.Fatal(err)
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashCopy copies the files of the open database in dir as they are now
// (what a kill -9 leaves: a memtable log with a tail Badger must cut).
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "killed")
	if err := os.Mkdir(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}
