package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore/badger"
)

// The defaults a new store is created with.
const (
	defaultVolume     = "default"
	defaultCollection = "default"
	autoKeyFile       = "key"
)

// storeDir is --store (or STOFUSE_STORE), else $XDG_DATA_HOME/stofuse,
// else ~/.local/share/stofuse. A command run by a mount daemon uses the
// daemon's store.
func storeDir(c *cli.Context) (string, error) {
	if r := remoteOf(c); r != nil {
		return r.daemon.session.dir, nil
	}
	if dir := c.String("store"); dir != "" {
		return filepath.Abs(dir)
	}
	if dir := defaultStoreDir(); dir != "" {
		return dir, nil
	}
	return "", usageError("no --store given and no home directory")
}

// defaultStoreDir is STOFUSE_STORE, else $XDG_DATA_HOME/stofuse, else
// ~/.local/share/stofuse ("" without a home directory).
func defaultStoreDir() string {
	if dir := os.Getenv("STOFUSE_STORE"); dir != "" {
		return dir
	}
	if xdg := os.Getenv("XDG_DATA_HOME"); xdg != "" {
		return filepath.Join(xdg, "stofuse")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "share", "stofuse")
}

// session is an open store: its metadata, and a Controller with every
// available volume mounted.
type session struct {
	dir  string
	meta *badger.Store
	ctl  *diskaccess.Controller
	// unavailable explains why a registered volume is not mounted.
	unavailable *volumeErrors
	out         *output
	// shared: the session of a mount daemon, lent to a command; the
	// command does not close it.
	shared bool
	remote *remote // the client request a daemon runs this for, or nil
	// prompted is the passphrase typed at a prompt, if one was, so that a
	// --background mount can hand it to its child.
	prompted []byte
}

// keyNeed says whether a command needs the data keys.
type keyNeed bool

const (
	needKeys keyNeed = true
	noKeys   keyNeed = false
)

// openSession opens the store, creating it on first use. A key given with
// --key-file or STOFUSE_PASSPHRASE is always checked, before anything else
// happens; commands that need keys also find one if none was given.
func openSession(c *cli.Context, keys keyNeed, opts ...diskaccess.Option) (*session, error) {
	if r := remoteOf(c); r != nil {
		return r.daemon.sessionFor(c)
	}
	dir, err := storeDir(c)
	if err != nil {
		return nil, err
	}
	out := newOutput(c)
	meta, err := openMeta(dir)
	if err != nil {
		return nil, err
	}
	s := &session{dir: dir, meta: meta, out: out, unavailable: &volumeErrors{m: map[int]error{}}}
	if err := s.prepare(c, keys, opts); err != nil {
		meta.Close()
		return nil, err
	}
	return s, nil
}

func openMeta(dir string) (*badger.Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	meta, err := badger.Open(filepath.Join(dir, "meta"))
	if errors.Is(err, badger.ErrStoreBusy) {
		return nil, fmt.Errorf("store %s is in use by another stofuse process (a running mount?)", dir)
	}
	return meta, err
}

func (s *session) prepare(c *cli.Context, keys keyNeed, opts []diskaccess.Option) error {
	ctx := c.Context
	initialized, err := s.meta.IsInitialized(ctx)
	if err != nil {
		return err
	}
	if !initialized {
		if err := s.create(c, ""); err != nil {
			return err
		}
	} else if keys == needKeys || keyGiven(c) {
		kek, err := s.findKEK(c)
		if err != nil {
			return err
		}
		if err := s.meta.Unlock(ctx, kek); err != nil {
			return keyError(err)
		}
	}
	s.ctl = diskaccess.New(s.meta, opts...)
	return s.mountVolumes(ctx)
}

func keyError(err error) error {
	if errors.Is(err, keyring.ErrWrongKey) {
		return &exitError{code: exitUsage, err: fmt.Errorf("wrong key: %w", err)}
	}
	return err
}

// Close closes the store (not a daemon's, which only lends it).
func (s *session) Close() error {
	if s.shared {
		return nil
	}
	return s.meta.Close()
}

// volumeErrors says why registered volumes are not mounted; a daemon's
// commands share it.
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

// create makes a new store: its root key sealed for the given or a new
// KEK, the default collection and the default volume. kind forces the KEK
// kind ("" picks: the key file given, STOFUSE_PASSPHRASE, or a new key file
// inside the store).
func (s *session) create(c *cli.Context, kind keyring.Kind) error {
	ctx := c.Context
	kek, kdf, err := s.newStoreKEK(c, kind)
	if err != nil {
		return err
	}
	if err := s.meta.Initialize(ctx, kek, kdf); err != nil {
		return err
	}
	if _, err := s.meta.CreateCollection(ctx, defaultCollection); err != nil {
		return err
	}
	ctl := diskaccess.New(s.meta)
	path := filepath.Join(s.dir, "volumes", defaultVolume)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	if _, err := addLocalVolume(ctx, s.meta, ctl, defaultVolume, path); err != nil {
		return err
	}
	s.out.notef("created store %s with volume %q and collection %q", s.dir, defaultVolume, defaultCollection)
	return nil
}

// newStoreKEK returns the KEK a new store is sealed for.
func (s *session) newStoreKEK(c *cli.Context, kind keyring.Kind) (*keyring.KEK, *keyring.KDFParams, error) {
	keyFile := clientPath(c, c.String("key-file"))
	switch {
	case kind == keyring.KindPassphrase || (kind == "" && keyFile == "" && getenv(c, passphraseEnv) != ""):
		return newPassphraseKEK(c, "new passphrase for the store")
	case keyFile != "":
		kek, err := keyring.LoadKeyFile(keyFile)
		if errors.Is(err, fs.ErrNotExist) {
			kek, err = keyring.GenerateKeyFile(keyFile)
			if err == nil {
				s.out.notef("created key file %s", keyFile)
			}
		}
		return kek, nil, keyError(err)
	}
	path := filepath.Join(s.dir, autoKeyFile)
	kek, err := keyring.GenerateKeyFile(path)
	if err != nil {
		return nil, nil, err
	}
	s.out.warnf("created key file %s. The key lies next to the data it protects: anyone who copies "+
		"the store directory can read it. Move it elsewhere (for example to a USB stick) and give "+
		"--key-file or STOFUSE_KEY_FILE from then on.", path)
	return kek, nil, nil
}
