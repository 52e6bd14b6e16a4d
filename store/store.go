// Package store is a stofuse store as a library: a directory holding the
// metadata (Badger, in meta/) and the registry of volumes, opened with a
// key, and the jobs that are more than one blob: put, cat, stat, the
// scrub of a volume, replicate, and the management of volumes,
// collections and keys.
//
// It prints nothing, parses no flags and reads no environment: the caller
// (the CLI, the mount daemon, a benchmark) passes in what it needs,
// reports progress through a Reporter it gives, and renders the typed
// results that come back.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore/badger"
)

// The names a new store is created with.
const (
	DefaultVolume     = "default"
	DefaultCollection = "default"
	// KeyFileInside is the key file Create may leave inside the store
	// (when the caller gives no key of its own); see KeyFileInsidePath.
	KeyFileInside = "key"
)

var (
	// ErrNotCreated: the directory holds no store yet (see Create).
	ErrNotCreated = errors.New("no store here yet")
	// ErrBusy: another process has the store open (a running mount).
	ErrBusy = errors.New("in use by another stofuse process (a running mount?)")
	// ErrNoPassphrase: a passphrase was given to a store that was never
	// sealed with one.
	ErrNoPassphrase = errors.New("this store has no passphrase")
	// ErrMetadataMissing: the store directory holds volumes but its
	// metadata directory is gone. Open changes nothing then: the store is
	// never re-created empty over its volumes.
	ErrMetadataMissing = errors.New("its metadata directory is missing")
	// ErrMetadataDamaged: the metadata directory is damaged (a
	// *badger.DamagedError says how); nothing in it was changed.
	ErrMetadataDamaged = badger.ErrDamaged
	// ErrLocked: the work needs the data keys, and the store was opened
	// without a key.
	ErrLocked = errors.New("the store was opened without a key")
)

// ErrInvalid is wrapped by the errors that say a request cannot be done
// as asked (the caller's to change), as opposed to a failure on the way:
// a name in use, a directory that holds a volume already, no such
// volume or collection.
var ErrInvalid = errors.New("invalid request")

// invalidf is an error that satisfies errors.Is(err, ErrInvalid) and
// reads as its own message.
func invalidf(format string, args ...any) error {
	return &invalidError{err: fmt.Errorf(format, args...)}
}

type invalidError struct{ err error }

func (e *invalidError) Error() string        { return e.err.Error() }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// NotFoundError: no volume or collection of that name. It satisfies
// errors.Is(err, ErrInvalid).
type NotFoundError struct {
	What string // "volume", "collection"
	Name string
}

func (e *NotFoundError) Error() string        { return fmt.Sprintf("no %s %q", e.What, e.Name) }
func (e *NotFoundError) Is(target error) bool { return target == ErrInvalid }

// Store is an open store: its metadata, and a Controller with every
// registered volume that is available mounted. Its methods may be called
// from many goroutines at once.
type Store struct {
	dir  string
	meta *badger.Store
	ctl  *diskaccess.Controller
	// unavailable says why registered volumes are not mounted.
	unavailable volumeErrors
	// keysOn holds the ids of the volumes known to hold the key
	// envelopes (keys_volume.go).
	keysOn sync.Map
	// snapshotGen counts the snapshot records this Store named on its
	// volumes, so that a listing of them cached for a mount knows when it
	// is out of date (snapshot_mount.go).
	snapshotGen atomic.Uint64
	// snapshotMu is held by a Snapshot from reading the last snapshot to
	// recording the new one: two at once (a mount's periodic one and a
	// command's) would both take the same parent.
	snapshotMu sync.Mutex
	// commits shares group commits among concurrent Syncs (sync.go).
	commits groupCommit
	// settled is what Open found of an unclean stop (settle.go); nil for
	// a store Create made. Set before Open returns, read-only after.
	settled *SettleReport
	// failed is the error Fail set (fail.go), nil until then.
	failed    atomic.Pointer[error]
	closeOnce sync.Once
	closeErr  error
}

// An Option sets how Open and Create open a store.
type Option func(*config)

type config struct {
	key        func() (Key, error)
	controller []diskaccess.Option
	// readOnly: open without writing the store (ReadOnly); scratch is
	// where a private copy of the metadata may be made.
	readOnly bool
	scratch  string
}

// WithKey unlocks the data keys with key. It is checked before anything
// else happens: a wrong key is an error wrapping keyring.ErrWrongKey.
// Without a key the store opens for keyless work only (stat, scrub,
// replicate, volumes).
func WithKey(key Key) Option {
	return WithKeyFunc(func() (Key, error) { return key, nil })
}

// WithKeyFunc is WithKey with a key found only once the store is known to
// exist (a key file inside it, a prompt): Open calls find before it
// mounts any volume, and fails with its error.
func WithKeyFunc(find func() (Key, error)) Option { return func(c *config) { c.key = find } }

// WithController passes options to the store's diskaccess.Controller (a
// mount's frame cache, for instance).
func WithController(opts ...diskaccess.Option) Option {
	return func(c *config) { c.controller = append(c.controller, opts...) }
}

// ReadOnly opens a store whose directory (and volumes) cannot be written,
// writing nothing to them: no lock file (a shared lock on the metadata
// directory), no settling of an unclean stop, no finish of an interrupted
// garbage collection, no sweep of a volume. A store whose open must
// change its metadata before it may be read (an unclean stop, a
// migration) is read from a private copy of the metadata, made in a new
// directory under scratch and removed at Close, in which those changes
// are made (badger.OpenReadOnly); PrivateCopy says where. Every write to
// the store fails (badger.ErrReadOnly). Only Open takes it.
func ReadOnly(scratch string) Option {
	return func(c *config) { c.readOnly, c.scratch = true, scratch }
}

// Open opens the store in dir and mounts every registered volume it can.
// A directory without a store is ErrNotCreated (nothing is left behind
// but an empty meta/); a store another process holds is ErrBusy.
//
// After an unclean stop (a crash or power loss since the last Sync), Open
// checks the blobs and files written since, as the journal names them,
// and puts back or removes the files whose content did not survive; and
// it removes what an interrupted garbage collection condemned (see
// CollectGarbage). Settled says what it found and did.
func Open(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	cfg := configOf(opts)
	open := openMeta
	if cfg.readOnly {
		open = func(dir string) (*Store, error) { return openMetaReadOnly(dir, cfg.scratch) }
	}
	s, err := open(dir)
	if err != nil {
		return nil, err
	}
	if err := s.open(ctx, cfg); err != nil {
		s.meta.Close()
		return nil, err
	}
	return s, nil
}

func configOf(opts []Option) *config {
	cfg := &config{}
	for _, opt := range opts {
		opt(cfg)
	}
	return cfg
}

func openMeta(dir string) (*Store, error) {
	if lostMetadata(dir) {
		return nil, fmt.Errorf("store %s holds volumes, but %w (%s)", dir, ErrMetadataMissing, filepath.Join(dir, "meta"))
	}
	return openMetaAnyway(dir)
}

// openMetaAnyway opens (or makes) the metadata in dir, whatever else dir
// holds: for Recover.
func openMetaAnyway(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	meta, err := badger.Open(filepath.Join(dir, "meta"))
	if errors.Is(err, badger.ErrStoreBusy) {
		return nil, fmt.Errorf("store %s is %w", dir, ErrBusy)
	}
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, meta: meta, unavailable: volumeErrors{m: map[int]error{}}}, nil
}

// lostMetadata reports whether dir holds volumes but no metadata: meta/
// is gone, or empty. (A meta/ that holds files but no MANIFEST is
// damaged: badger.Open says so.)
func lostMetadata(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "volumes")); err != nil {
		return false
	}
	entries, err := os.ReadDir(filepath.Join(dir, "meta"))
	return errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0
}

func (s *Store) open(ctx context.Context, cfg *config) error {
	initialized, err := s.meta.IsInitialized(ctx)
	if err != nil {
		return err
	}
	if !initialized {
		return fmt.Errorf("store %s: %w", s.dir, ErrNotCreated)
	}
	if cfg.key != nil {
		key, err := cfg.key()
		if err != nil {
			return err
		}
		if err := s.Unlock(ctx, key); err != nil {
			return err
		}
	}
	if s.meta.ReadOnly() {
		return s.openReadOnly(ctx, cfg)
	}
	s.ctl = diskaccess.New(s.meta, cfg.controller...)
	s.meta.OnKeysChanged(func() error { return s.WriteKeys(context.Background()) })
	if err := s.mountVolumes(ctx); err != nil {
		return err
	}
	if err := s.settle(ctx); err != nil {
		return err
	}
	return s.finishCollection(ctx)
}

// SealFunc returns the KEK a new store is sealed for, and its argon2id
// parameters when it comes from a passphrase (else nil).
type SealFunc func() (*keyring.KEK, *keyring.KDFParams, error)

// Create makes a new store in dir, sealed for the KEK seal returns, with
// the default collection and the default volume in dir/volumes/default,
// and returns it open and unlocked. A directory that holds a store is
// refused (ErrInvalid) before seal is called, so that no key is made or
// asked for in vain.
func Create(ctx context.Context, dir string, seal SealFunc, opts ...Option) (*Store, error) {
	cfg := configOf(opts)
	s, err := openMeta(dir)
	if err != nil {
		return nil, err
	}
	if err := s.create(ctx, seal, cfg); err != nil {
		s.meta.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) create(ctx context.Context, seal SealFunc, cfg *config) error {
	if done, err := s.meta.IsInitialized(ctx); err != nil || done {
		if err == nil {
			err = invalidf("store %s already exists", s.dir)
		}
		return err
	}
	kek, kdf, err := seal()
	if err != nil {
		return err
	}
	if err := s.meta.Initialize(ctx, kek, kdf); err != nil {
		return err
	}
	if _, err := s.meta.CreateCollection(ctx, DefaultCollection); err != nil {
		return err
	}
	s.ctl = diskaccess.New(s.meta, cfg.controller...)
	s.meta.OnKeysChanged(func() error { return s.WriteKeys(context.Background()) })
	// The one volume allowed inside the store directory.
	path := filepath.Join(s.dir, "volumes", DefaultVolume)
	_, err = s.addVolume(ctx, LocalVolume(DefaultVolume, path), path)
	return err
}

// Close makes everything written durable (a last Sync, so that a clean
// stop leaves nothing to check at the next open; none for a store opened
// ReadOnly or after Fail), then closes the store's metadata; a second
// Close does nothing. Badger's Close may not return when the directory is
// gone (it retries a flush of its memtable there forever): a caller that
// must exit bounds its wait. The store must not be used
// after. If the Sync fails, the metadata is closed all the same, and the
// next Open checks what may not be durable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var syncErr error
		if s.ctl != nil && !s.meta.ReadOnly() && s.Failed() == nil {
			syncErr = s.Sync(context.Background())
		}
		s.closeErr = errors.Join(syncErr, s.meta.Close())
	})
	return s.closeErr
}

// closeWithoutSync closes the metadata without the last Sync, as a crash
// would leave it (the crash tests' worst case: the metadata keeps every
// write, the volumes lose what was not synced).
func (s *Store) closeWithoutSync() error {
	s.closeOnce.Do(func() { s.closeErr = s.meta.Close() })
	return s.closeErr
}

// Dir is the store directory.
func (s *Store) Dir() string { return s.dir }

// Meta is the store's metadata: the catalog and files/ tree a mount
// serves.
func (s *Store) Meta() *badger.Store { return s.meta }

// Controller reads and writes blobs on the store's mounted volumes.
func (s *Store) Controller() *diskaccess.Controller { return s.ctl }

// KeyFileInsidePath is where Create's caller may keep a key file inside
// the store (see KeyFileInside), which Open's caller may then find.
func KeyFileInsidePath(dir string) string { return filepath.Join(dir, KeyFileInside) }

// volumeErrors says why registered volumes are not mounted.
type volumeErrors struct {
	mu sync.Mutex // guards m
	m  map[int]error
}

func (v *volumeErrors) get(id int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.m[id]
}

func (v *volumeErrors) set(id int, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err == nil {
		delete(v.m, id)
	} else {
		v.m[id] = err
	}
}
