package badger_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// hashes is the SHA-256 of every file in dir, by name.
func hashes(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(body)
	}
	return out
}

// TestDamagedDirectoryIsRefusedUntouched: a deleted MANIFEST, a cut
// table, a cut value log or a blank key registry is ErrDamaged from Open,
// and every file of the directory is byte for byte as it was.
func TestDamagedDirectoryIsRefusedUntouched(t *testing.T) {
	damage := map[string]func(dir string) error{
		"no MANIFEST":      func(dir string) error { return os.Remove(filepath.Join(dir, "MANIFEST")) },
		"cut table":        func(dir string) error { return cutFirst(dir, "*.sst", 100) },
		"cut value log":    func(dir string) error { return cutFirst(dir, "*.vlog", 10) },
		"blank registry":   func(dir string) error { return blank(filepath.Join(dir, "KEYREGISTRY")) },
		"cut table to 3 B": func(dir string) error { return cutFirst(dir, "*.sst", 3) },
	}
	for name, do := range damage {
		t.Run(name, func(t *testing.T) {
			store, _, _ := newStore(t)
			ctx := context.Background()
			for i := range 200 {
				store.WriteBlobCreated(ctx, testMeta(blobstore.RefOf([]byte{byte(i), 7})), 1)
			}
			dir := store.Dir()
			store.Close()
			if err := do(dir); err != nil {
				t.Fatal(err)
			}
			before := hashes(t, dir)
			_, err := badger.Open(dir)
			var damaged *badger.DamagedError
			if !errors.Is(err, badger.ErrDamaged) || !errors.As(err, &damaged) {
				t.Fatalf("Open of a directory with %s: %v, want ErrDamaged", name, err)
			}
			t.Logf("%s: %v", name, err)
			after := hashes(t, dir)
			if len(after) != len(before) {
				t.Errorf("Open changed the files: %d before, %d after", len(before), len(after))
			}
			for file, sum := range before {
				if after[file] != sum {
					t.Errorf("Open changed %s", file)
				}
			}
		})
	}
}

func cutFirst(dir, pattern string, size int64) error {
	matches, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(matches) == 0 {
		return errors.New("no " + pattern + " in " + dir)
	}
	return os.Truncate(matches[0], size)
}

func blank(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, make([]byte, info.Size()), 0o600)
}
