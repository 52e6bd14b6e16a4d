package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/blobstore"
)

// RawStore implements blobstore.Driver: temp file in the shard directory ->
// write -> length check -> fsync -> rename -> fsync directory. Until the
// rename nothing is visible under the ref; after the directory fsync the
// blob survives power loss.
func (s *Store) RawStore(ctx context.Context, ref blobstore.Ref, content io.Reader) error {
	shard := s.shardDir(ref)
	if err := s.makeShard(shard); err != nil {
		return err
	}
	temp, err := createLockedTemp(shard)
	if err != nil {
		return err
	}
	// Closing releases the lock, so the file is closed only after it has
	// been renamed or removed: Sweep never takes a live temp file.
	defer temp.Close()
	if err := writeAndSync(ctx, temp, content); err != nil {
		os.Remove(temp.Name())
		return err
	}
	if err := os.Rename(temp.Name(), s.path(ref)); err != nil {
		os.Remove(temp.Name())
		return err
	}
	return syncDir(shard)
}

// makeShard creates a shard directory on first use and makes its entry in
// the volume directory durable.
func (s *Store) makeShard(shard string) error {
	err := os.Mkdir(shard, 0o700)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(s.dir)
}

func createLockedTemp(dir string) (*os.File, error) {
	temp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(temp.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		temp.Close()
		os.Remove(temp.Name())
		return nil, fmt.Errorf("localfs: lock %s: %w", temp.Name(), err)
	}
	return temp, nil
}

func writeAndSync(ctx context.Context, temp *os.File, content io.Reader) error {
	written, err := io.Copy(temp, ctxReader{ctx, content})
	if err != nil {
		return err
	}
	info, err := temp.Stat()
	if err != nil {
		return err
	}
	if info.Size() != written {
		return fmt.Errorf("localfs: %s holds %d bytes after writing %d", temp.Name(), info.Size(), written)
	}
	return temp.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops a copy once its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// Sweep implements blobstore.Sweeper: it removes the temp files of writes
// that died. A temp file whose lock it cannot take belongs to a write in
// progress and is left alone.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	shards, err := readShardNames(s.dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, shard := range shards {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		n, err := sweepShard(filepath.Join(s.dir, shard))
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func sweepShard(shard string) (int, error) {
	entries, err := os.ReadDir(shard)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, entry := range entries {
		if !strings.HasPrefix(entry.Name(), tempPrefix) {
			continue
		}
		gone, err := removeIfAbandoned(filepath.Join(shard, entry.Name()))
		if err != nil {
			return removed, err
		}
		if gone {
			removed++
		}
	}
	if removed > 0 {
		return removed, syncDir(shard)
	}
	return removed, nil
}

func removeIfAbandoned(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // renamed or removed by its writer meanwhile
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
		return false, err
	}
	// Holding the lock, we know no writer owns it; its writer would have
	// renamed it before unlocking, so the name is still the abandoned file.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, nil
}
