package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/blobstore"
)

// RawStore implements blobstore.Driver (see storeFile).
func (s *Store) RawStore(ctx context.Context, ref blobstore.Ref, content io.Reader) error {
	return s.storeFile(ctx, s.shardDir(ref), s.path(ref), content)
}

// RawCreate implements blobstore.Stager: the blob is written to a locked
// temp file in its shard, and renamed to its name at Publish (see
// stagedFile).
func (s *Store) RawCreate(ctx context.Context, ref blobstore.Ref) (blobstore.StagedBlob, error) {
	return s.createFile(s.shardDir(ref), s.path(ref))
}

// PutObject implements blobstore.Driver: a named object is stored like a
// blob (see storeFile), in the objects directory.
func (s *Store) PutObject(ctx context.Context, name string, content io.Reader) error {
	path, err := s.objectPath(name)
	if err != nil {
		return err
	}
	return s.storeFile(ctx, s.objectsDir(), path, content)
}

// storeFile stores content at path, a file in dir, through a stagedFile.
func (s *Store) storeFile(ctx context.Context, dir, path string, content io.Reader) error {
	f, err := s.createFile(dir, path)
	if err != nil {
		return err
	}
	buf := copyBuffers.Get().(*[256 << 10]byte)
	defer copyBuffers.Put(buf)
	if _, err := io.CopyBuffer(f, blobstore.ContextReader(ctx, content), buf[:]); err != nil {
		f.Discard()
		return err
	}
	return f.Publish(ctx)
}

// stagedFile is a file being written to path, a file in dir: temp file in
// dir -> write -> length check -> fsync -> link or rename to path -> fsync
// dir. Until then nothing is visible at path; after the directory fsync
// the file survives power loss. Under blobstore.WithDeferredSync both
// fsyncs of a new file are left to Sync; a file that replaces one is
// synced at once, so that a crash never costs the durable old one.
//
// The temp file is an unnamed one (O_TMPFILE) where the filesystem has
// them: it needs no name, no lock and no Sweep, since it vanishes with its
// process, and a new blob is published with one link. Elsewhere it is a
// locked named temp file, renamed into place.
type stagedFile struct {
	store    *Store
	dir      string
	path     string
	temp     *os.File
	tempName string // "" for an unnamed temp file
	written  int64
	done     bool
}

func (s *Store) createFile(dir, path string) (*stagedFile, error) {
	if err := s.makeDir(dir); err != nil {
		return nil, err
	}
	f := &stagedFile{store: s, dir: dir, path: path}
	if s.noTmpfile.Load() {
		return f, f.createNamed()
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	switch {
	case err == nil:
		f.temp = os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)"))
		return f, nil
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL):
		s.noTmpfile.Store(true) // the filesystem has none: named ones from now on
		return f, f.createNamed()
	}
	return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
}

func (f *stagedFile) createNamed() error {
	temp, tempName, err := createLockedTemp(f.dir)
	f.temp, f.tempName = temp, tempName
	return err
}

func (f *stagedFile) Write(p []byte) (int, error) {
	if f.done {
		return 0, os.ErrClosed
	}
	if err := f.store.checkSpace(); err != nil {
		return 0, err
	}
	n, err := f.temp.Write(p)
	f.written += int64(n)
	return n, err
}

// Publish implements blobstore.StagedBlob.
func (f *stagedFile) Publish(ctx context.Context) error {
	if f.done {
		return os.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		f.Discard()
		return err
	}
	// Closing releases the lock, so the file is closed only after it has
	// been renamed or removed: Sweep never takes a live temp file.
	f.done = true
	defer f.temp.Close()
	deferred := blobstore.SyncDeferred(ctx) && !exists(f.path)
	if err := checkTemp(f.temp, f.written, !deferred); err != nil {
		f.removeTemp()
		return err
	}
	if err := f.place(); err != nil {
		f.removeTemp()
		return err
	}
	if deferred {
		f.store.deferred.add(f.path, f.dir)
		return nil
	}
	return syncDir(f.dir)
}

// place gives the written temp file its name: a link of an unnamed temp
// file where nothing is stored yet, else a rename over what is there.
func (f *stagedFile) place() error {
	if f.tempName == "" {
		err := f.link(f.path)
		if !errors.Is(err, unix.EEXIST) {
			return err
		}
		// A replace: name the file (locked, for Sweep), then rename it.
		if err := unix.Flock(int(f.temp.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return err
		}
		name := filepath.Join(f.dir, tempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		if err := f.link(name); err != nil {
			return err
		}
		f.tempName = name
	}
	return os.Rename(f.tempName, f.path)
}

// link makes a name for the unnamed temp file, through /proc (linkat with
// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
func (f *stagedFile) link(name string) error {
	proc := "/proc/self/fd/" + strconv.Itoa(int(f.temp.Fd()))
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: proc, New: name, Err: err}
	}
	return nil
}

func (f *stagedFile) removeTemp() {
	if f.tempName != "" {
		os.Remove(f.tempName)
	}
}

// Discard implements blobstore.StagedBlob.
func (f *stagedFile) Discard() {
	if f.done {
		return
	}
	f.done = true
	f.removeTemp()
	f.temp.Close()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// makeDir creates a directory of the volume (a shard, or the objects
// directory) on first use and makes its entry in the volume directory
// durable. A directory made by someone else (another writer that may not
// have synced yet, or an earlier process) is synced once too before a file
// in it is trusted to be durable.
func (s *Store) makeDir(dir string) error {
	s.mu.Lock()
	known := s.synced[dir]
	s.mu.Unlock()
	if known {
		return nil
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.mu.Lock()
	s.synced[dir] = true
	s.mu.Unlock()
	return nil
}

// createLockedTemp creates a temp file, locks it, and only then gives it
// the name Sweep looks at, so that Sweep never sees an unlocked live one.
// It returns the file and its name now (the file's Name() is the first one).
func createLockedTemp(dir string) (*os.File, string, error) {
	temp, err := os.CreateTemp(dir, newPrefix+"*")
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*os.File, string, error) {
		temp.Close()
		os.Remove(temp.Name())
		return nil, "", fmt.Errorf("localfs: temp file %s: %w", temp.Name(), err)
	}
	if err := unix.Flock(int(temp.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail(err)
	}
	name := filepath.Join(dir, tempPrefix+strings.TrimPrefix(filepath.Base(temp.Name()), newPrefix))
	if err := os.Rename(temp.Name(), name); err != nil {
		return fail(err)
	}
	return temp, name, nil
}

// copyBuffers hold what RawStore copies to disk: larger than io.Copy's
// 32 KiB, so that a blob of 128 KiB frames takes few write calls.
var copyBuffers = sync.Pool{New: func() any { return new([256 << 10]byte) }}

// checkTemp checks that temp holds the written bytes, and fsyncs it if
// asked to.
func checkTemp(temp *os.File, written int64, fsync bool) error {
	info, err := temp.Stat()
	if err != nil {
		return err
	}
	if info.Size() != written {
		return fmt.Errorf("localfs: a temp file holds %d bytes after writing %d", info.Size(), written)
	}
	if !fsync {
		return nil
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

// Sweep implements blobstore.Sweeper: it removes the temp files of writes
// that died, in the shards and the objects directory. A temp file whose
// lock it cannot take belongs to a write in progress and is left alone.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	shards, err := readShardNames(s.dir)
	if err != nil {
		return 0, err
	}
	dirs := []string{s.objectsDir()}
	for _, shard := range shards {
		dirs = append(dirs, filepath.Join(s.dir, shard))
	}
	removed := 0
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		n, err := sweepDir(dir)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// sweepDir removes the abandoned temp files of one directory; a directory
// not made yet has none.
func sweepDir(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, entry := range entries {
		path := filepath.Join(dir, entry.Name())
		var gone bool
		var err error
		switch {
		case strings.HasPrefix(entry.Name(), tempPrefix):
			gone, err = removeIfAbandoned(path)
		case strings.HasPrefix(entry.Name(), newPrefix):
			gone, err = removeIfOld(path, entry)
		default:
			continue
		}
		if err != nil {
			return removed, err
		}
		if gone {
			removed++
		}
	}
	if removed > 0 {
		return removed, syncDir(dir)
	}
	return removed, nil
}

// removeIfOld removes a temp file that was never locked (its writer died in
// the instant between creating and locking it): one older than a minute
// cannot be a live one.
func removeIfOld(path string, entry os.DirEntry) (bool, error) {
	info, err := entry.Info()
	if errors.Is(err, os.ErrNotExist) || err == nil && time.Since(info.ModTime()) < time.Minute {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, nil
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
