package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/store"
)

// TestAddVolumeRefusesDirectories holds AddVolume to the rules for a local
// volume's directory: each refusal is ErrInvalid with its own message, and
// leaves the directory and the registry as they were.
func TestAddVolumeRefusesDirectories(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	storeDir := s.Dir()
	outside := t.TempDir()
	mustAdd(t, s, "second", filepath.Join(outside, "second"))

	mkdir(t, filepath.Join(outside, "full"))
	touch(t, filepath.Join(outside, "full", "photo.jpg"))
	mkdir(t, filepath.Join(outside, "disks"))
	mustAdd(t, s, "nested", filepath.Join(outside, "disks", "nested"))
	symlink(t, filepath.Join(storeDir, "meta"), filepath.Join(outside, "to-meta"))
	symlink(t, storeDir, filepath.Join(outside, "to-store"))
	symlink(t, filepath.Join(outside, "second"), filepath.Join(outside, "to-second"))
	os.RemoveAll(filepath.Join(outside, "disks", "nested")) // an emptied disk

	for _, tc := range []struct{ name, dir, want string }{
		{"store", storeDir, "is the store directory; choose a directory outside it"},
		{"meta", filepath.Join(storeDir, "meta"), "is inside the store directory " + storeDir + "; choose a directory outside it"},
		{"volumes", filepath.Join(storeDir, "volumes"), "is inside the store directory"},
		{"new in volumes", filepath.Join(storeDir, "volumes", "other"), "is inside the store directory"},
		{"dotdot", storeDir + "/volumes/default/../../meta", "is inside the store directory"},
		{"link to meta", filepath.Join(outside, "to-meta"), "to-meta (really " + filepath.Join(storeDir, "meta") + ") is inside the store directory"},
		{"under link to store", filepath.Join(outside, "to-store", "new"), "is inside the store directory"},
		{"parent of store", filepath.Dir(storeDir), "contains the store directory " + storeDir},
		{"in a volume", filepath.Join(outside, "second", "000"), `is inside volume "second" (` + filepath.Join(outside, "second") + "); choose a directory outside it"},
		{"under link to volume", filepath.Join(outside, "to-second", "sub", "dir"), `is inside volume "second"`},
		{"holds a volume", filepath.Join(outside, "disks"), `contains volume "nested" (` + filepath.Join(outside, "disks", "nested") + "); choose a directory that holds no volume"},
		{"an emptied volume", filepath.Join(outside, "disks", "nested"), `is the directory of volume "nested" already; choose another directory`},
		{"not empty", filepath.Join(outside, "full"), "full is not empty (it holds photo.jpg); choose an empty directory"},
		{"a file", filepath.Join(outside, "full", "photo.jpg"), "photo.jpg is not a directory"},
		{"a volume", filepath.Join(outside, "second"), "already holds a stofuse volume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := listing(t, tc.dir)
			_, err := s.AddVolume(ctx, store.LocalVolume("third", tc.dir))
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddVolume(%s) = %v; want ErrInvalid saying %q", tc.dir, err, tc.want)
			}
			if after := listing(t, tc.dir); after != before {
				t.Errorf("the refused directory changed: %q, was %q", after, before)
			}
			if _, err := s.LookupVolume(ctx, "third"); err == nil {
				t.Errorf("the refused volume was registered")
			}
		})
	}
}

func TestAddVolumeTakesEmptyOrMissingDirectories(t *testing.T) {
	s, _ := newStore(t)
	outside := t.TempDir()
	empty := filepath.Join(outside, "empty")
	mkdir(t, empty)
	mustAdd(t, s, "empty", empty)
	missing := filepath.Join(outside, "new", "disk")
	mustAdd(t, s, "missing", missing)
	if _, err := os.Stat(filepath.Join(missing, "objects")); err != nil {
		t.Fatalf("the missing directory was not made a volume: %v", err)
	}
	// Beside a volume whose name it shares a prefix with, not inside it.
	mustAdd(t, s, "beside", empty+"-2")
}

func mustAdd(t *testing.T, s *store.Store, label, dir string) {
	t.Helper()
	if _, err := s.AddVolume(context.Background(), store.LocalVolume(label, dir)); err != nil {
		t.Fatalf("AddVolume(%s): %v", dir, err)
	}
}

// listing names what a directory holds, all the way down; "" if missing.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil {
			names = append(names, path)
		}
		return nil
	})
	return strings.Join(names, "\n")
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
