package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

func objectNotFound(name string) error {
	return fmt.Errorf("memory: object %q: %w", name, fs.ErrNotExist)
}

// PutObject implements blobstore.Driver.
func (s *Store) PutObject(ctx context.Context, name string, content io.Reader) error {
	if err := blobstore.CheckObjectName(name); err != nil {
		return err
	}
	data, err := readContent(ctx, content)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[name] = stored{data, time.Now()}
	return nil
}

// GetObject implements blobstore.Driver. Stored bytes are never changed in
// place, so a reader keeps the version it opened.
func (s *Store) GetObject(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := blobstore.CheckObjectName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	object, ok := s.objects[name]
	if !ok {
		return nil, objectNotFound(name)
	}
	return io.NopCloser(bytes.NewReader(object.data)), nil
}

// ListObjects implements blobstore.Driver.
func (s *Store) ListObjects(ctx context.Context, prefix string, fn func(blobstore.ObjectInfo) error) error {
	s.mu.Lock()
	var infos []blobstore.ObjectInfo
	for name, object := range s.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, blobstore.ObjectInfo{Name: name, Size: int64(len(object.data)), ModTime: object.modTime})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(infos, func(a, b blobstore.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
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

// RemoveObject implements blobstore.Driver.
func (s *Store) RemoveObject(ctx context.Context, name string) error {
	if err := blobstore.CheckObjectName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; !ok {
		return objectNotFound(name)
	}
	delete(s.objects, name)
	return nil
}
