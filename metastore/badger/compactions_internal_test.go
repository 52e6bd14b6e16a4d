package badger

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// TestCloseSettlesCompactions: after a burst of writes, Close lets the
// compactions due finish, so that the next open has little to do: what
// Close's own flush of the memtable left (its table in level 0, or in the
// level below if a compaction took it there before Close stopped them),
// not the burst's backlog.
func TestCloseSettlesCompactions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 500)
	const batches, perBatch = 300, 1000 // some 150 MB, in 8 MiB memtables
	for b := range batches {
		err := s.update(func(txn *badgerdb.Txn) error {
			for i := range perBatch {
				if err := txn.Set(fmt.Appendf(nil, "test/%04d/%04d", (b*7919)%batches, i), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As Close left it: a read-only open runs no compaction. What is
	// left to compact: level 0, and what a level between it and the last
	// holds beyond its target.
	ro, err := OpenReadOnly(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	levels := ro.db.Levels()
	ro.Close()
	var left int64
	for i, level := range levels {
		if i == 0 {
			left += level.Size
		} else if i < len(levels)-1 {
			left += max(0, level.Size-level.TargetSize)
		}
	}
	if left > 3*memTableSize {
		t.Errorf("Close left %.1f MiB to compact (more than three memtables): %+v", float64(left)/(1<<20), levels)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetState(context.Background(), "x", 1); err != nil {
		t.Fatal(err)
	}
}
