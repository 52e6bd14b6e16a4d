package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore/badger"
)

// RecoverReport says what Recover brought back, and what it could not.
type RecoverReport struct {
	Store        string                `json:"store"`
	Volume       string                `json:"volume"`
	Collections  []RecoveredCollection `json:"collections"`
	Blobs        int                   `json:"blobs"`        // indexed: verified with a key
	Bytes        int64                 `json:"bytes"`        // their stored bytes
	Unusable     []Finding             `json:"unusable"`     // on the volume, not indexed
	Unreferenced int                   `json:"unreferenced"` // indexed, in no restored tree: kept as stored explicitly
}

// RecoveredCollection is one collection's outcome.
type RecoveredCollection struct {
	Name     string `json:"name"`
	Snapshot string `json:"snapshot,omitempty"` // the snapshot its tree came from; "" if none
	Files    int    `json:"files"`              // entries restored
	// Skipped names the newer snapshots that could not be used, and why.
	Skipped []string `json:"skipped,omitempty"`
	Error   string   `json:"error,omitempty"` // why no tree came back
}

// Complete reports whether everything on the volume was brought back.
func (r *RecoverReport) Complete() bool {
	if len(r.Unusable) > 0 {
		return false
	}
	for _, c := range r.Collections {
		if c.Error != "" || len(c.Skipped) > 0 {
			return false
		}
	}
	return true
}

// ErrWorkingStore: Recover into a directory that holds a working store.
var ErrWorkingStore = errors.New("holds a working store: recover never writes over one")

// Recover rebuilds a store in dir from one volume (v: its driver and
// settings, as for AddVolume) and a key: the volume, the collections and
// their keys, the blob index (every blob's bytes verified with its key
// before it is indexed), and each collection's files/ tree from its
// newest intact snapshot. dir is a new directory, or a store directory
// whose meta/ is gone (the volume may be inside it); a working store is
// ErrWorkingStore. A key that does not open the volume's envelopes fails
// (wrapping keyring.ErrWrongKey) before anything is written. The store is
// returned open and unlocked, with the report.
func Recover(ctx context.Context, dir string, v badger.Volume, key Key, r Reporter) (*Store, *RecoverReport, error) {
	r = reporterOr(r)
	if _, err := os.Stat(filepath.Join(dir, "meta", "MANIFEST")); err == nil {
		return nil, nil, invalidf("%s %w", dir, ErrWorkingStore)
	}
	driver, err := openDriver(ctx, &v)
	if err != nil {
		return nil, nil, err
	}
	if v.UUID, err = diskaccess.VolumeUUID(ctx, driver); err != nil {
		return nil, nil, fmt.Errorf("%s is not a stofuse volume: %w", Where(&v), err)
	}
	keys, err := readVolumeKeys(ctx, driver)
	if err != nil {
		return nil, nil, fmt.Errorf("volume %s: %w", Where(&v), err)
	}
	kek, err := kekFor(key, keys)
	if err != nil {
		return nil, nil, err
	}
	if _, err := keys.Root.Open(kek); err != nil {
		return nil, nil, fmt.Errorf("this %s (fingerprint %s) does not open the store on volume %s: %w", kek.Kind(), kek.ID(), Where(&v), keyring.ErrWrongKey)
	}
	s, err := openMetaAnyway(dir)
	if err != nil {
		return nil, nil, err
	}
	report := &RecoverReport{Store: dir, Volume: Where(&v)}
	if err := s.recover(ctx, driver, v, keys, kek, r, report); err != nil {
		s.Close()
		return nil, report, err
	}
	return s, report, nil
}

func kekFor(key Key, keys *badger.KeyExport) (*keyring.KEK, error) {
	if key.kek != nil {
		return key.kek, nil
	}
	if keys.KDF == nil {
		return nil, ErrNoPassphrase
	}
	return keyring.FromPassphrase(key.passphrase, *keys.KDF)
}

func (s *Store) recover(ctx context.Context, driver blobstore.Driver, v badger.Volume, keys *badger.KeyExport, kek *keyring.KEK, r Reporter, report *RecoverReport) error {
	if err := s.meta.ImportKeys(ctx, keys); err != nil {
		return err
	}
	if err := s.meta.Unlock(ctx, kek); err != nil {
		return err
	}
	s.ctl = diskaccess.New(s.meta)
	s.meta.OnKeysChanged(func() error { return s.WriteKeys(context.Background()) })
	added, err := s.meta.AddVolume(ctx, v)
	if err != nil {
		return err
	}
	if err := s.ctl.Mount(ctx, added.ID, added.UUID, driver); err != nil {
		return err
	}
	if err := s.indexVolume(ctx, driver, added, keys, r, report); err != nil {
		return err
	}
	used, err := s.restoreTrees(ctx, added.ID, keys, r, report)
	if err != nil {
		return err
	}
	report.Unreferenced = max(report.Blobs-used, 0)
	return nil
}

// indexVolume records every blob of the volume whose bytes check out with
// one of the collections' keys.
func (s *Store) indexVolume(ctx context.Context, driver blobstore.Driver, v *badger.Volume, keys *badger.KeyExport, r Reporter, report *RecoverReport) error {
	dataKeys, err := s.dataKeys(keys)
	if err != nil {
		return err
	}
	var blobs []blobstore.BlobInfo
	if err := driver.List(ctx, func(info blobstore.BlobInfo) error {
		if !diskaccess.IsVolumeDescriptor(info.Ref) {
			blobs = append(blobs, info)
		}
		return nil
	}); err != nil {
		return err
	}
	var total int64
	for _, b := range blobs {
		total += b.Size
	}
	r.Begin("recover: verify and index "+v.Label, int64(len(blobs)), total)
	defer r.End()
	const batchSize = 256
	var batch []*diskaccess.BlobMeta
	for _, info := range blobs {
		meta, err := diskaccess.Recognize(ctx, driver, info.Ref, dataKeys, info.ModTime.UTC())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Add(1, info.Size)
		if err != nil {
			report.Unusable = append(report.Unusable, scrubFinding(info.Ref, err))
			continue
		}
		report.Blobs++
		report.Bytes += meta.SizeOnDisk
		if batch = append(batch, meta); len(batch) == batchSize {
			if err := s.meta.WriteBlobsCreated(ctx, batch, v.ID); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		return s.meta.WriteBlobsCreated(ctx, batch, v.ID)
	}
	return nil
}

// dataKeys are the collections' data keys, for Recognize.
func (s *Store) dataKeys(keys *badger.KeyExport) ([]diskaccess.DataKey, error) {
	var out []diskaccess.DataKey
	for _, c := range keys.Collections {
		dek, err := s.meta.Ring().DataKey(c.KeyID)
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", c.Name, err)
		}
		out = append(out, diskaccess.DataKey{ID: c.KeyID, Key: dek})
	}
	return out, nil
}
