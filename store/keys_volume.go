package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/stofuse/stofuse/metastore/badger"
)

// keysObject is the named object on every volume that holds the store's
// key envelopes (docs/format.md, "Keys on the volume"): sealed for the
// KEKs and the root key, never in plaintext.
const keysObject = "keys"

const keysFormat = "stofuse keys"

// maxKeysObject bounds what is read of a volume's keys object.
const maxKeysObject = 1 << 20

// volumeKeys is the keys object's content.
type volumeKeys struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	badger.KeyExport
}

// WriteKeys writes the store's key envelopes to every mounted volume, so
// that a volume and a key are enough to recover the store. Commands that
// write call it; a change of keys (a collection made, a key added) does
// on its own.
func (s *Store) WriteKeys(ctx context.Context) error {
	export, err := s.meta.ExportKeys(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(volumeKeys{Format: keysFormat, Version: 1, KeyExport: *export})
	if err != nil {
		return err
	}
	volumes, err := s.meta.Volumes(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range volumes {
		driver, err := s.ctl.Driver(v.ID)
		if err != nil {
			continue // not mounted: it gets them when it is next written to
		}
		if err := driver.PutObject(ctx, keysObject, bytes.NewReader(body)); err != nil {
			errs = append(errs, fmt.Errorf("volume %s: writing the key envelopes: %w", v.Label, err))
		}
	}
	return errors.Join(errs...)
}

// readVolumeKeys reads a volume's keys object.
func readVolumeKeys(ctx context.Context, driver interface {
	GetObject(context.Context, string) (io.ReadCloser, error)
}) (*badger.KeyExport, error) {
	r, err := driver.GetObject(ctx, keysObject)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, maxKeysObject+1))
	if err != nil {
		return nil, err
	}
	var keys volumeKeys
	if len(body) > maxKeysObject || json.Unmarshal(body, &keys) != nil || keys.Format != keysFormat {
		return nil, fmt.Errorf("the volume's key envelopes (object %q) are damaged", keysObject)
	}
	if keys.Version != 1 {
		return nil, fmt.Errorf("the volume's key envelopes are of version %d, newer than this stofuse reads", keys.Version)
	}
	return &keys.KeyExport, nil
}

// ensureKeys writes the key envelopes to the volume if it does not hold
// them yet (a volume of a store made before they were kept there), before
// anything sealed is written to it.
// It looks once per volume for as long as the store is open.
func (s *Store) ensureKeys(ctx context.Context, volumeID int) error {
	if _, done := s.keysOn.Load(volumeID); done {
		return nil
	}
	driver, err := s.ctl.Driver(volumeID)
	if err != nil {
		return err
	}
	r, err := driver.GetObject(ctx, keysObject)
	switch {
	case err == nil:
		r.Close()
	case errors.Is(err, fs.ErrNotExist):
		err = s.WriteKeys(ctx)
	}
	if err == nil {
		s.keysOn.Store(volumeID, true)
	}
	return err
}
