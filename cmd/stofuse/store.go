package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/store"
)

// session is a command's open store and its output.
type session struct {
	*store.Store
	out *output
	// lent: the store is a mount daemon's, lent to the command, which
	// does not close it.
	lent bool
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

// storeDir is --store, else the environment's default store.
func storeDir(c *cli.Context) (string, error) {
	e := envOf(c)
	if dir := c.String("store"); dir != "" {
		return filepath.Abs(e.path(dir))
	}
	if e.defaultStore != "" {
		return e.defaultStore, nil
	}
	return "", usageError("no --store given and no home directory")
}

// openSession opens the command's store (creating it on first use). A key
// given with --key-file or STOFUSE_PASSPHRASE is always checked, before
// anything else happens; commands that need keys also find one if none
// was given.
func openSession(c *cli.Context, keys keyNeed) (*session, error) {
	dir, err := storeDir(c)
	if err != nil {
		return nil, err
	}
	if why := notWritable(dir); why != nil && !readOnlyCommand(c) {
		return nil, readOnlyStoreError(c, dir, why)
	}
	return envOf(c).host.open(c, dir, keys)
}

// Close closes the store; a daemon's, which it only lends, gets a group
// commit instead, so that what the command wrote is as durable when it
// returns as without a mount (Close commits too).
func (s *session) Close() error {
	if s.lent {
		return s.Store.Sync(context.Background())
	}
	return s.Store.Close()
}

// localHost opens the store in this process.
type localHost struct{}

func (localHost) mount() *mountStatus      { return nil }
func (localHost) jobs() []jobStatus        { return nil }
func (localHost) observer() store.Observer { return nil }

func (localHost) replicator() *store.Replicator { return nil }

func (localHost) open(c *cli.Context, dir string, keys keyNeed) (*session, error) {
	return openHere(c, dir, keys)
}

// openHere opens the store in dir in this process, creating it on first
// use. A store that cannot be written is opened read-only (readonly.go)
// for the commands that only read, and refused for the others.
func openHere(c *cli.Context, dir string, keys keyNeed, opts ...store.Option) (*session, error) {
	s := &session{out: newOutput(c)}
	if keys == needKeys || keyGiven(c) {
		opts = append(opts, store.WithKeyFunc(func() (store.Key, error) { return s.findKey(c, dir) }))
	}
	why := notWritable(dir)
	if why != nil {
		if !readOnlyCommand(c) {
			return s, readOnlyStoreError(c, dir, why)
		}
		opts = append(opts, store.ReadOnly(os.TempDir()))
	}
	st, err := store.Open(c.Context, dir, opts...)
	if errors.Is(err, store.ErrNotCreated) {
		if why != nil {
			return s, fmt.Errorf("%w, and none can be made there (%v)", err, why)
		}
		return s, s.create(c, dir, "", opts)
	}
	s.Store = st
	if err == nil {
		s.reportSettled()
	}
	return s, err
}

// reportSettled says what opening the store did after an unclean stop (a
// crash, kill -9 or power loss since the last group commit), on stderr:
// see settledLines; and, for a store opened read-only, that it was done in
// a private copy of the metadata.
func (s *session) reportSettled() {
	if private := s.PrivateCopy(); private != "" {
		s.out.warnf("store %s cannot be written, and its metadata must be changed before it is read (it was not closed "+
			"cleanly): reading it from a private copy in %s, changed there and removed at exit; nothing in the store is "+
			"changed (the next open where it can be written does that)", s.Dir(), private)
	}
	for _, line := range settledLines(s.Settled()) {
		s.out.warnf("%s", line)
	}
}

// settledLines are what a store's open did after an unclean stop: a
// summary, then every file put back or removed and every blob lost or
// left unchecked, by name. None after a clean stop.
func settledLines(r store.SettleReport) []string {
	if r.Clean {
		return nil
	}
	lines := []string{r.String()}
	for _, name := range r.Reverted {
		lines = append(lines, "  put back: "+name+" (its new content did not survive; it has its content before again)")
	}
	for _, name := range r.Removed {
		lines = append(lines, "  removed: "+name+" (new since the last commit, and its content did not survive)")
	}
	for _, lost := range r.Lost {
		how := "missing"
		if lost.Damaged {
			how = "damaged"
		}
		lines = append(lines, fmt.Sprintf("  blob %s on volume %s: %s, no longer recorded there", lost.Ref, lost.Volume, how))
	}
	for _, u := range r.Unchecked {
		lines = append(lines, fmt.Sprintf("  blob %s on volume %s: not checked (%s); checked again at the next open", u.Ref, u.Volume, u.Why))
	}
	return lines
}

// create makes a new store: its root key sealed for the given or a new
// KEK, the default collection and the default volume. kind forces the KEK
// kind ("" picks: the key file given, STOFUSE_PASSPHRASE, or a new key file
// inside the store).
func (s *session) create(c *cli.Context, dir string, kind keyring.Kind, opts []store.Option) error {
	seal := func() (*keyring.KEK, *keyring.KDFParams, error) { return s.newStoreKEK(c, dir, kind) }
	var err error
	s.Store, err = store.Create(c.Context, dir, seal, opts...)
	if err != nil {
		return err
	}
	s.out.notef("created store %s with volume %q and collection %q", dir, store.DefaultVolume, store.DefaultCollection)
	return nil
}

// newStoreKEK returns the KEK a new store is sealed for.
func (s *session) newStoreKEK(c *cli.Context, dir string, kind keyring.Kind) (*keyring.KEK, *keyring.KDFParams, error) {
	e := envOf(c)
	keyFile := keyFileFlag(c)
	switch {
	case kind == keyring.KindPassphrase || (kind == "" && keyFile == "" && e.getenv(passphraseEnv) != ""):
		passphrase, err := newPassphrase(c, passphraseEnv, "new passphrase for the store")
		if err != nil {
			return nil, nil, err
		}
		return store.NewPassphraseKEK(passphrase)
	case keyFile != "":
		kek, err := keyring.LoadKeyFile(keyFile)
		if errors.Is(err, fs.ErrNotExist) {
			kek, err = keyring.GenerateKeyFile(keyFile)
			if err == nil {
				s.out.notef("created key file %s", keyFile)
			}
		}
		return kek, nil, err
	}
	path := store.KeyFileInsidePath(dir)
	kek, err := keyring.GenerateKeyFile(path)
	if err != nil {
		return nil, nil, err
	}
	s.out.warnf("created key file %s. The key lies next to the data it protects: anyone who copies "+
		"the store directory can read it. Move it elsewhere (for example to a USB stick) and give "+
		"--key-file or STOFUSE_KEY_FILE from then on.", path)
	return kek, nil, nil
}

// mountOptions are the store options of a mount: its frame cache, and
// the healer its reads report damaged copies to.
func mountOptions(cache *diskaccess.FrameCache, healer *store.Healer) []store.Option {
	return []store.Option{store.WithController(diskaccess.WithFrameCache(cache), diskaccess.WithDamageHandler(healer.Report))}
}
