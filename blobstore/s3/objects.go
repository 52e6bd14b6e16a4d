package s3

import (
	"context"
	"io"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore"
)

// objectsDir is where named objects live, under the prefix. It cannot be
// mistaken for a shard (three hex characters) nor for holdDir.
const objectsDir = "objects/"

// objectKey is the key of a named object: its flat spelling (each '/'
// written '+'), because many S3 servers keep objects as files and cannot
// hold both "a" and "a/b".
func (s *Store) objectKey(name string) (string, error) {
	if err := blobstore.CheckObjectName(name); err != nil {
		return "", err
	}
	return s.prefix + objectsDir + blobstore.FlatObjectName(name), nil
}

// GetObject implements blobstore.Driver. It streams the object as RawFetch
// streams a blob: a replaced object is ErrObjectChanged, never a splice.
func (s *Store) GetObject(ctx context.Context, name string) (io.ReadCloser, error) {
	key, err := s.objectKey(name)
	if err != nil {
		return nil, err
	}
	return s.fetchKey(ctx, key)
}

// RemoveObject implements blobstore.Driver. As for Remove, a HEAD first
// tells a missing object apart.
func (s *Store) RemoveObject(ctx context.Context, name string) error {
	key, err := s.objectKey(name)
	if err != nil {
		return err
	}
	if _, err := s.statKey(ctx, key); err != nil {
		return err
	}
	return s.retry(ctx, "remove", key, func(ctx context.Context) error {
		return s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	})
}

// ListObjects implements blobstore.Driver. Flat keys do not sort as the
// names do, so the listing is read whole, and sorted, before fn sees the
// first object; a listing that fails for a transient reason starts again.
func (s *Store) ListObjects(ctx context.Context, prefix string, fn func(blobstore.ObjectInfo) error) error {
	var infos []blobstore.ObjectInfo
	listPrefix := s.prefix + objectsDir + blobstore.FlatObjectName(prefix)
	err := s.retry(ctx, "list", listPrefix, func(ctx context.Context) error {
		var err error
		infos, err = s.readObjects(ctx, listPrefix)
		return err
	})
	if err != nil {
		return err
	}
	slices.SortFunc(infos, func(a, b blobstore.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// readObjects lists the named objects under listPrefix; keys that are not
// the spelling of a valid name (strays) are left out.
func (s *Store) readObjects(ctx context.Context, listPrefix string) ([]blobstore.ObjectInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var infos []blobstore.ObjectInfo
	options := minio.ListObjectsOptions{Prefix: listPrefix, Recursive: true}
	for object := range s.core.ListObjectsIter(ctx, s.bucket, options) {
		if object.Err != nil {
			return nil, object.Err
		}
		name, ok := blobstore.ObjectNameOfFlat(strings.TrimPrefix(object.Key, s.prefix+objectsDir))
		if ok {
			infos = append(infos, blobstore.ObjectInfo{Name: name, Size: object.Size, ModTime: object.LastModified})
		}
	}
	return infos, ctx.Err()
}
