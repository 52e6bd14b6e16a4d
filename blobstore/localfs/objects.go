package localfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stofuse/stofuse/blobstore"
)

// objectsDirName is the directory of named objects in the volume. It can
// never be taken for a shard: shards are three hex characters.
const objectsDirName = "objects"

func (s *Store) objectsDir() string { return filepath.Join(s.dir, objectsDirName) }

// objectPath is the file of a named object: one flat directory, each '/'
// of the name spelled '+', so that "a" and "a/b" can both exist.
func (s *Store) objectPath(name string) (string, error) {
	if err := blobstore.CheckObjectName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.objectsDir(), blobstore.FlatObjectName(name)), nil
}

// GetObject implements blobstore.Driver. An open file keeps its contents
// when the object is replaced (rename) or removed (unlink).
func (s *Store) GetObject(ctx context.Context, name string) (io.ReadCloser, error) {
	path, err := s.objectPath(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.Open(path)
}

// RemoveObject implements blobstore.Driver. The removal is made durable by
// an fsync of the objects directory.
func (s *Store) RemoveObject(ctx context.Context, name string) error {
	path, err := s.objectPath(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(s.objectsDir())
}

// ListObjects implements blobstore.Driver. The flat spelling does not sort
// as the names do, so the matching entries are read and sorted before fn
// sees the first; files that are not the spelling of a valid name (temp
// files, strays) are not listed.
func (s *Store) ListObjects(ctx context.Context, prefix string, fn func(blobstore.ObjectInfo) error) error {
	infos, err := s.readObjects(prefix)
	if err != nil {
		return err
	}
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// readObjects returns the named objects whose names start with prefix, in
// name order. A volume without an objects directory holds none.
func (s *Store) readObjects(prefix string) ([]blobstore.ObjectInfo, error) {
	entries, err := os.ReadDir(s.objectsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var infos []blobstore.ObjectInfo
	for _, entry := range entries {
		name, ok := blobstore.ObjectNameOfFlat(entry.Name())
		if !ok || !strings.HasPrefix(name, prefix) || !entry.Type().IsRegular() {
			continue
		}
		info, err := entry.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we listed
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, blobstore.ObjectInfo{Name: name, Size: info.Size(), ModTime: info.ModTime()})
	}
	slices.SortFunc(infos, func(a, b blobstore.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}
