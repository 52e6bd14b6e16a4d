package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// openMetaReadOnly opens the metadata in dir with badger.OpenReadOnly:
// nothing is made or written in dir.
func openMetaReadOnly(dir, scratch string) (*Store, error) {
	if lostMetadata(dir) {
		return nil, fmt.Errorf("store %s holds volumes, but %w (%s)", dir, ErrMetadataMissing, filepath.Join(dir, "meta"))
	}
	meta, err := badger.OpenReadOnly(filepath.Join(dir, "meta"), scratch)
	switch {
	case errors.Is(err, badger.ErrStoreBusy):
		return nil, fmt.Errorf("store %s is %w", dir, ErrBusy)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("store %s: %w", dir, ErrNotCreated)
	case err != nil:
		return nil, err
	}
	return &Store{dir: dir, meta: meta, unavailable: volumeErrors{m: map[int]error{}}}, nil
}

// openReadOnly is open's rest for a store opened ReadOnly: the volumes
// are mounted without a sweep; an unclean stop is settled only in a
// private copy of the metadata (where the open found the journal not
// empty: see badger.OpenReadOnly), with no damaged copy removed from its
// volume; an interrupted garbage collection is left for a writable open
// (its condemned blobs are out of the metadata already: what is left is
// their copies on the volumes, which nothing shows).
func (s *Store) openReadOnly(ctx context.Context, cfg *config) error {
	s.ctl = diskaccess.New(s.meta, append(cfg.controller, diskaccess.WithoutSweep())...)
	if err := s.mountVolumes(ctx); err != nil {
		return err
	}
	if s.meta.PrivateCopy() == "" {
		return nil
	}
	return s.settle(ctx)
}

// ReadOnly reports whether the store was opened ReadOnly.
func (s *Store) ReadOnly() bool { return s.meta.ReadOnly() }

// PrivateCopy is where a store opened ReadOnly keeps the private copy of
// its metadata that its open had to change ("" if it needed none).
func (s *Store) PrivateCopy() string { return s.meta.PrivateCopy() }
