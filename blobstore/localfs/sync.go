package localfs

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// deferredSyncs are the files stored under blobstore.WithDeferredSync,
// and their directories, whose fsyncs wait for Sync.
type deferredSyncs struct {
	// syncMu makes Syncs take turns, held during their fsyncs: a Sync that
	// finds nothing left to do must still wait for one in flight, whose
	// files it would otherwise report durable too early.
	syncMu sync.Mutex

	mu    sync.Mutex // guards files and dirs; never held during I/O
	files map[string]bool
	dirs  map[string]bool
}

func (d *deferredSyncs) add(file, dir string) {
	d.putBack(map[string]bool{file: true}, map[string]bool{dir: true})
}

// addDir adds a directory alone: one a deferred Remove changed.
func (d *deferredSyncs) addDir(dir string) {
	d.putBack(nil, map[string]bool{dir: true})
}

// putBack adds files and dirs to the set: those of a store, or those a
// failed Sync took, for the next one.
func (d *deferredSyncs) putBack(files, dirs map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.files == nil {
		d.files, d.dirs = map[string]bool{}, map[string]bool{}
	}
	maps.Copy(d.files, files)
	maps.Copy(d.dirs, dirs)
}

// take empties the set and returns what was in it.
func (d *deferredSyncs) take() (files, dirs map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	files, dirs = d.files, d.dirs
	d.files, d.dirs = nil, nil
	return files, dirs
}

// syncfsFrom is how many deferred files (or directories: a gc's removals)
// make Sync sync the volume's whole filesystem at once (syncfs(2)) instead
// of each file and directory: each fsync is a journal commit of its own on
// ext4, and a group commit after an untar has thousands.
const syncfsFrom = 16

// Sync implements blobstore.Driver. With few files deferred it fsyncs each,
// then their directories, so that no name becomes durable before its
// bytes; with many, one syncfs(2) of the volume's filesystem makes them
// all durable together (a crash during it may leave a name with partial
// bytes, which the metadata's journal of unsynced records finds). A file
// removed or replaced since needs nothing more: Remove and a replacing
// store sync themselves (a deferred Remove leaves its directory to this
// Sync). If a sync fails, everything taken is put back for the next Sync.
func (s *Store) Sync(ctx context.Context) error {
	s.deferred.syncMu.Lock()
	defer s.deferred.syncMu.Unlock()
	files, dirs := s.deferred.take()
	var err error
	if len(files) >= syncfsFrom || len(dirs) >= syncfsFrom {
		err = syncFilesystem(s.dir)
	} else {
		err = syncPaths(ctx, files, syncFile)
		if err == nil {
			err = syncPaths(ctx, dirs, syncDir)
		}
	}
	if err != nil {
		s.deferred.putBack(files, dirs)
	}
	return err
}

// syncFilesystem syncs the filesystem holding dir; since Linux 5.8 it
// reports writeback errors of the files on it.
func syncFilesystem(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

func syncPaths(ctx context.Context, paths map[string]bool, sync func(string) error) error {
	for path := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := sync(path); err != nil {
			return err
		}
	}
	return nil
}

// syncFile fsyncs a file by its name. One removed meanwhile is not an
// error: Remove made its removal durable.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
