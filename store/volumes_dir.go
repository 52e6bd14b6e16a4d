package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/diskaccess"
)

// makeLocalDir creates the directory of a new local volume, if
// checkLocalDir allows it.
func (s *Store) makeLocalDir(ctx context.Context, dir, ownDir string) error {
	if err := s.checkLocalDir(ctx, dir, ownDir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

// checkLocalDir says whether dir may become a new local volume. The
// rules, all ErrInvalid, compared on real paths (absolute, symbolic
// links resolved as far as the path exists) so that a link or a ".."
// cannot get around them:
//
//   - A directory that holds a volume descriptor passes here: Initialize
//     refuses it, with its own message.
//   - Not the store directory, nor anything inside it (meta/ is Badger's,
//     volumes/ holds the store's own), nor a directory that contains it.
//     The one exception is ownDir, the directory of the default volume
//     that Create makes (STORE/volumes/default); AddVolume passes "".
//   - Not inside another registered local volume, nor a directory that
//     contains one, nor the directory of one (an emptied disk).
//   - An existing directory must be empty; a missing one is fine (AddVolume
//     creates it).
func (s *Store) checkLocalDir(ctx context.Context, dir, ownDir string) error {
	real, err := realPath(dir)
	if err != nil {
		return err
	}
	if holdsDescriptor(ctx, real) {
		return nil
	}
	if err := s.checkOutsideStore(dir, real, ownDir); err != nil {
		return err
	}
	if err := s.checkOutsideVolumes(ctx, dir, real); err != nil {
		return err
	}
	return checkEmpty(dir)
}

func (s *Store) checkOutsideStore(dir, real, ownDir string) error {
	storeDir, err := filepath.Abs(s.dir)
	if err != nil {
		return err
	}
	storeReal, err := realPath(storeDir)
	if err != nil {
		return err
	}
	if ownDir != "" {
		if own, err := realPath(ownDir); err == nil && own == real {
			return nil
		}
	}
	switch {
	case real == storeReal:
		return invalidf("%s is the store directory; choose a directory outside it", shown(dir, real))
	case inside(real, storeReal):
		return invalidf("%s is inside the store directory %s; choose a directory outside it", shown(dir, real), storeDir)
	case inside(storeReal, real):
		return invalidf("%s contains the store directory %s; choose a directory outside it", shown(dir, real), storeDir)
	}
	return nil
}

func (s *Store) checkOutsideVolumes(ctx context.Context, dir, real string) error {
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, v := range volumes {
		if v.Driver != "localfs" {
			continue
		}
		other, err := realPath(v.Settings["path"])
		if err != nil {
			continue // a volume directory we cannot resolve cannot be dir either
		}
		where := Where(v)
		switch {
		case real == other:
			return invalidf("%s is the directory of volume %q already; choose another directory", shown(dir, real), v.Label)
		case inside(real, other):
			return invalidf("%s is inside volume %q (%s); choose a directory outside it", shown(dir, real), v.Label, where)
		case inside(other, real):
			return invalidf("%s contains volume %q (%s); choose a directory that holds no volume", shown(dir, real), v.Label, where)
		}
	}
	return nil
}

// checkEmpty refuses an existing dir that is not an empty directory.
func checkEmpty(dir string) error {
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return invalidf("%s is not a directory; choose a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return invalidf("%s is not empty (it holds %s); choose an empty directory", dir, entryNames(entries))
	}
	return nil
}

// entryNames names the first few entries of a directory, for a message.
func entryNames(entries []os.DirEntry) string {
	const most = 3
	var names []string
	for i, e := range entries {
		if i == most {
			names = append(names, fmt.Sprintf("and %d more", len(entries)-most))
			break
		}
		names = append(names, e.Name())
	}
	return strings.Join(names, ", ")
}

// holdsDescriptor reports whether the directory holds a volume descriptor.
func holdsDescriptor(ctx context.Context, dir string) bool {
	driver, err := localfs.Open(dir)
	if err != nil {
		return false
	}
	r, err := driver.GetObject(ctx, diskaccess.VolumeDescriptorName)
	if err != nil {
		return false
	}
	r.Close()
	return true
}

// realPath is path made absolute with its symbolic links resolved; of a
// path that does not exist yet, the part that exists is resolved and the
// rest is joined to it, as MkdirAll would make it. A dangling link is an
// error.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var missing []string
	for {
		real, err := filepath.EvalSymlinks(abs)
		if err == nil {
			return filepath.Join(append([]string{real}, missing...)...), nil
		}
		if _, lerr := os.Lstat(abs); !errors.Is(lerr, fs.ErrNotExist) {
			return "", invalidf("%s: %w", path, err)
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return "", err
		}
		missing = append([]string{filepath.Base(abs)}, missing...)
		abs = parent
	}
}

// inside reports whether path lies strictly inside dir (both real paths).
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// shown is dir for a message, with its real path if that differs.
func shown(dir, real string) string {
	if abs, err := filepath.Abs(dir); err == nil && abs == real {
		return abs
	}
	return fmt.Sprintf("%s (really %s)", dir, real)
}
