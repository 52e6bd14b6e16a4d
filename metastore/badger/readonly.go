package badger

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	badgerdb "github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// A store on read-only media (a write-protected backup disk, a read-only
// mount) is opened with OpenReadOnly, which writes nothing into its
// directory: Badger's read-only mode takes a shared lock on the directory
// (flock, which needs no write) and writes no LOCK file.
//
// That mode cannot open every store. After a crash Badger's memtable log
// holds more than its last complete transaction (it is preallocated), and
// Badger refuses it read-only (ErrTruncateNeeded); and a store left
// unclean needs writes before it may be read: the journal's entries
// settled (what a power loss may have undone must not be shown as good),
// the files a crash left half-written removed, a migration run. For
// those, OpenReadOnly copies the metadata directory into a private
// scratch directory and opens the copy for writing: what an open must
// change is changed in the copy, which Close removes. The original is
// never written, and holds the shared lock meanwhile, so that no writer
// can open it (on media that only this user cannot write).

// ErrReadOnly: the store was opened read-only (OpenReadOnly), and a write
// was asked of it.
var ErrReadOnly = errors.New("the store is opened read-only (its directory cannot be written)")

// OpenReadOnly opens the store in dir without writing anything there. A
// store that needs writes before it can be read (see above) is opened
// from a private copy of its metadata made in a new directory under
// scratch, which Close removes; PrivateCopy names it. A damaged database
// is a *DamagedError, another process holding it for writing
// ErrStoreBusy, and a directory without a database fs.ErrNotExist.
func OpenReadOnly(dir, scratch string) (*Store, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("metadata directory: %w", err) // fs.ErrNotExist if there is none
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("metadata directory %s is empty: %w", dir, os.ErrNotExist)
	}
	lock, err := lockShared(dir)
	if err != nil {
		return nil, err
	}
	// A memtable log made ahead (space.go) by a process that died is
	// empty, which Badger's read-only mode cannot open: the copy leaves
	// it out.
	if !hasPlaceholder(dir) {
		s, err := openReadOnlyHere(dir)
		if err == nil {
			var needs string
			if needs, err = s.needsWrites(); err == nil && needs == "" {
				s.readOnly, s.sharedLock = true, lock
				return s, nil
			}
			s.Close()
		}
		if err != nil && !strings.Contains(err.Error(), badgerdb.ErrTruncateNeeded.Error()) {
			lock.Close()
			return nil, err
		}
	}
	s, err := openPrivateCopy(dir, scratch)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.sharedLock = lock
	return s, nil
}

// lockShared takes a shared lock on dir (what Badger's read-only mode
// takes), so that no process opens it for writing while it is read.
func lockShared(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w (a running mount?)", dir, ErrStoreBusy)
	}
	return f, nil
}

func openReadOnlyHere(dir string) (*Store, error) {
	opts := badgerOptions(dir).WithReadOnly(true)
	if hasMemtableLogs(dir) {
		// Replayed in memory only, each may need the largest memtable (replay.go).
		opts = opts.WithMemTableSize(replayMemTableSize)
	}
	db, err := openBadger(dir, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, dir: dir, gcStop: make(chan struct{}), gcDone: make(chan struct{})}
	close(s.gcDone) // no value-log GC: it writes
	if err := s.openJournal(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openPrivateCopy copies the database in dir into a new directory under
// scratch and opens the copy for writing, as Open does.
func openPrivateCopy(dir, scratch string) (*Store, error) {
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("scratch directory for a copy of the metadata: %w", err)
	}
	sweepPrivateCopies(scratch)
	private, err := os.MkdirTemp(scratch, privatePrefix)
	if err != nil {
		return nil, fmt.Errorf("scratch directory for a copy of the metadata: %w", err)
	}
	inUse, err := os.OpenFile(filepath.Join(private, inUseName), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = unix.Flock(int(inUse.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err == nil {
		err = copyDatabase(dir, private)
	}
	if err != nil {
		closeFile(inUse)
		os.RemoveAll(private)
		return nil, fmt.Errorf("copying the metadata %s to %s: %w", dir, private, err)
	}
	s, err := open(private, nil)
	if err != nil {
		inUse.Close()
		os.RemoveAll(private)
		return nil, err
	}
	s.readOnly, s.private, s.privateInUse, s.dir = true, private, inUse, dir
	return s, nil
}

// A private copy is a directory privatePrefix* under the scratch
// directory, holding the file inUseName, locked (flock) while the copy is
// in use.
const (
	privatePrefix = "stofuse-meta-"
	inUseName     = "stofuse-in-use"
)

// sweepPrivateCopies removes the private copies that a process killed
// before its Close left in scratch: those whose in-use file is not
// locked. (A copy without one is still being made.)
func sweepPrivateCopies(scratch string) {
	copies, _ := filepath.Glob(filepath.Join(scratch, privatePrefix+"*"))
	for _, dir := range copies {
		f, err := os.OpenFile(filepath.Join(dir, inUseName), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

func closeFile(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// copyDatabase copies every file of the database in dir (but its LOCK)
// into to, keeping holes: Badger's logs are sparse files of up to twice
// their size limit.
func copyDatabase(dir, to string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" || e.Name() == inUseName || isPlaceholder(e) {
			continue
		}
		if err := copySparse(filepath.Join(dir, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copySparse(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	for off := int64(0); off < info.Size(); {
		data, err := src.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // nothing but a hole to the end
		}
		if err != nil {
			dst.Close()
			return err
		}
		hole, err := src.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			dst.Close()
			return err
		}
		if _, err := src.Seek(data, io.SeekStart); err != nil {
			dst.Close()
			return err
		}
		if _, err := io.Copy(io.NewOffsetWriter(dst, data), io.LimitReader(src, hole-data)); err != nil {
			dst.Close()
			return err
		}
		off = hole
	}
	if err := dst.Truncate(info.Size()); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// needsWrites says what an open must write before the store may be read
// ("" for nothing): the journal's entries to settle, files a crash left
// half-written, a migration.
func (s *Store) needsWrites() (string, error) {
	var needs []string
	err := s.view(func(txn *badgerdb.Txn) error {
		for _, p := range []struct {
			prefix byte
			what   string
		}{{prefixJournal, "journal entries to settle"}, {prefixUncommitted, "files left half-written"}} {
			it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{p.prefix}})
			it.Rewind()
			if it.Valid() {
				needs = append(needs, p.what)
			}
			it.Close()
		}
		for _, m := range []struct {
			name    string
			version int
		}{{"tree-index", treeIndexVersion}, {"explicit-stores", explicitStoresVersion}, {"dir-links", dirLinksVersion}} {
			var version int
			err := getJSON(txn, stringKey(prefixSetting, m.name), m.name, &version)
			if err != nil && !isNotExist(err) {
				return err
			}
			if version < m.version {
				needs = append(needs, "a migration ("+m.name+")")
			}
		}
		return nil
	})
	return strings.Join(needs, ", "), err
}

// ReadOnly reports whether the store was opened with OpenReadOnly.
func (s *Store) ReadOnly() bool { return s.readOnly }

// PrivateCopy is the private copy of the metadata a read-only open had to
// make (see OpenReadOnly), "" if none.
func (s *Store) PrivateCopy() string { return s.private }

// closeReadOnly removes a private copy and releases the shared lock.
func (s *Store) closeReadOnly() error {
	var err error
	if s.private != "" {
		err = os.RemoveAll(s.private)
		s.privateInUse.Close()
	}
	if s.sharedLock != nil {
		s.sharedLock.Close()
	}
	return err
}

// ensureWritable refuses a write to a store opened read-only from its own
// directory (a private copy takes the writes an open makes).
func (s *Store) ensureWritable() error {
	if s.readOnly && s.private == "" {
		return ErrReadOnly
	}
	return nil
}
