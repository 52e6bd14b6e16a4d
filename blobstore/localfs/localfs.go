// Package localfs stores blobs as files in a local directory.
//
// Layout: a blob with ref abcdef... lives at DIR/abc/abcdef... (the first
// three hex characters name its shard). 4096 shards keep every directory
// at a few thousand entries at 10 million blobs. Shards are made on first
// use. Named objects live in DIR/objects, one file each, a name's '/'
// spelled '+' (see blobstore.FlatObjectName).
//
// Writes of blobs and named objects alike are durable and atomic: temp file
// in the file's own directory, write, length check, fsync, link or rename
// into place, fsync of the directory; under blobstore.WithDeferredSync a
// new file's two fsyncs wait for Sync. The temp file is unnamed (O_TMPFILE)
// where the filesystem allows, so a write that dies leaves nothing;
// elsewhere it is named and locked (flock) while it is written, so Sweep
// can tell an abandoned one from one being written by a live process.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/stofuse/stofuse/blobstore"
)

const (
	shardLen   = 3
	tempPrefix = ".tmp-"
	// newPrefix names a temp file in the instant between its creation and
	// its lock; it is renamed to tempPrefix once locked.
	newPrefix = ".new-"
	// RoutingCost of a local disk: the cheapest kind of volume.
	RoutingCost = 10
)

// Store is a blobstore.Driver over a local directory.
type Store struct {
	dir string

	mu     sync.Mutex      // guards synced
	synced map[string]bool // directories (shards, objects) whose entry is known durable

	deferred deferredSyncs // what stores under WithDeferredSync left to Sync

	noTmpfile atomic.Bool // the filesystem has no O_TMPFILE: temp files are named

	spaceCheck atomic.Pointer[func() error] // SetSpaceCheck's; nil: none
}

var (
	_ blobstore.Driver             = (*Store)(nil)
	_ blobstore.RandomAccessDriver = (*Store)(nil)
	_ blobstore.Sweeper            = (*Store)(nil)
	_ blobstore.Stager             = (*Store)(nil)
)

// Open returns a Store over dir, which must exist and be a directory: a
// volume whose disk is not attached must not silently become an empty
// directory on another disk.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("localfs: volume directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("localfs: volume directory %s is not a directory", abs)
	}
	return &Store{dir: abs, synced: make(map[string]bool)}, nil
}

// Dir returns the absolute path of the volume directory.
func (s *Store) Dir() string { return s.dir }

// RoutingCost implements blobstore.Driver.
func (s *Store) RoutingCost() int { return RoutingCost }

func (s *Store) shardDir(ref blobstore.Ref) string {
	return filepath.Join(s.dir, ref.String()[:shardLen])
}

func (s *Store) path(ref blobstore.Ref) string {
	return filepath.Join(s.shardDir(ref), ref.String())
}

// Properties implements blobstore.Driver: a local disk, read at random
// offsets, with the reader's own read-ahead.
func (s *Store) Properties() blobstore.Properties { return blobstore.Properties{} }

// RawFetch implements blobstore.Driver.
func (s *Store) RawFetch(ctx context.Context, ref blobstore.Ref) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return os.Open(s.path(ref))
}

// RawOpen implements blobstore.RandomAccessDriver. An open file keeps its
// contents even when the blob is replaced (rename) or removed (unlink).
func (s *Store) RawOpen(ctx context.Context, ref blobstore.Ref) (blobstore.RawReaderAt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(ref))
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &rawFile{File: f, size: info.Size()}, nil
}

type rawFile struct {
	*os.File
	size int64
}

func (f *rawFile) Size() int64 { return f.size }

// Stat implements blobstore.Driver.
func (s *Store) Stat(ctx context.Context, ref blobstore.Ref) (blobstore.BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return blobstore.BlobInfo{}, err
	}
	info, err := os.Stat(s.path(ref))
	if err != nil {
		return blobstore.BlobInfo{}, err
	}
	return blobstore.BlobInfo{Ref: ref, Size: info.Size(), ModTime: info.ModTime()}, nil
}

// Remove implements blobstore.Driver. The removal is made durable by an
// fsync of the shard directory, at once or, under WithDeferredSync, at the
// next Sync (one fsync of each directory, or a syncfs, for many removals).
func (s *Store) Remove(ctx context.Context, ref blobstore.Ref) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(s.path(ref)); err != nil {
		return err
	}
	if blobstore.SyncDeferred(ctx) {
		s.deferred.addDir(s.shardDir(ref))
		return nil
	}
	return syncDir(s.shardDir(ref))
}

// List implements blobstore.Driver. Shards and the names in them are read in
// sorted order, which is ascending ref order. Names that are not refs
// (temp files, strays) are not listed. The modification time is the
// file's, which the rename of a store leaves as the temp file's last write.
func (s *Store) List(ctx context.Context, fn func(blobstore.BlobInfo) error) error {
	shards, err := readShardNames(s.dir)
	if err != nil {
		return err
	}
	for _, shard := range shards {
		if err := s.listShard(ctx, shard, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) listShard(ctx context.Context, shard string, fn func(blobstore.BlobInfo) error) error {
	entries, err := os.ReadDir(filepath.Join(s.dir, shard))
	if err != nil {
		return err
	}
	for _, entry := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		ref, err := blobstore.ParseRef(entry.Name())
		if err != nil || ref.String()[:shardLen] != shard || !entry.Type().IsRegular() {
			continue
		}
		info, err := entry.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we listed
		}
		if err != nil {
			return err
		}
		if err := fn(blobstore.BlobInfo{Ref: ref, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// readShardNames returns the shard directories of dir in sorted order.
func readShardNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var shards []string
	for _, entry := range entries {
		if entry.IsDir() && isShardName(entry.Name()) {
			shards = append(shards, entry.Name())
		}
	}
	return shards, nil
}

func isShardName(name string) bool {
	if len(name) != shardLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
