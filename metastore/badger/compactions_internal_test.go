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
// compactions due finish, so that the next open has none to do below
// level 0 (level 0 may hold the table of Close's own flush, and one
// before it).
func TestCloseSettlesCompactions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 500)
	const batches, perBatch = 120, 1000 // some 60 MB: several memtables, tables at two levels
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
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, level := range s.db.Levels() {
		if level.Level > 0 && level.Score >= 1 || level.Level == 0 && level.NumTables > 2 {
			t.Errorf("level %d is due for a compaction at the open after Close: %d tables, %d bytes (target %d), score %.2f",
				level.Level, level.NumTables, level.Size, level.TargetSize, level.Score)
		}
	}
	if err := s.SetState(context.Background(), "x", 1); err != nil {
		t.Fatal(err)
	}
}
