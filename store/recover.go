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
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// RecoverReport says what Recover brought back, and what it could not.
type RecoverReport struct {
	Store       string                `json:"store"`
	Volume      string                `json:"volume"`
	Collections []RecoveredCollection `json:"collections"`
	Blobs       int                   `json:"blobs"` // indexed: verified
	// FromIndex counts the blobs checked against the checksum a blob index
	// on the volume recorded; the others were verified with a key.
	FromIndex    int       `json:"from_index"`
	Bytes        int64     `json:"bytes"`        // their stored bytes
	Unusable     []Finding `json:"unusable"`     // on the volume, not indexed
	Unreferenced int       `json:"unreferenced"` // indexed, in no restored tree
	// Explicit counts the blobs recovered as explicit stores: those the
	// index says were, and those it cannot say of (see indexWriter).
	Explicit int `json:"explicit"`
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
	idx, err := s.readIndexes(ctx, driver, added.ID, keys, r)
	if err != nil {
		return err
	}
	if err := s.indexVolume(ctx, driver, added, keys, idx, r, report); err != nil {
		return err
	}
	used, err := s.restoreTrees(ctx, added.ID, keys, idx, r, report)
	if err != nil {
		return err
	}
	report.Unreferenced = max(report.Blobs-used, 0)
	return nil
}

// indexVolume records every blob of the volume whose bytes check out:
// against the checksum its index recorded, or, for a blob no index
// knows, with one of the collections' keys.
func (s *Store) indexVolume(ctx context.Context, driver blobstore.Driver, v *badger.Volume, keys *badger.KeyExport, idx *recoveredIndex, r Reporter, report *RecoverReport) error {
	dataKeys, err := s.dataKeys(keys)
	if err != nil {
		return err
	}
	blobs, total, err := listBlobs(ctx, driver)
	if err != nil {
		return err
	}
	r.Begin("recover: verify and index "+v.Label, int64(len(blobs)), total)
	defer r.End()
	w := &indexWriter{store: s, volume: v.ID, report: report, indexed: map[string][]badger.IndexMark{}}
	for _, info := range blobs {
		meta, err := s.verifyFound(ctx, driver, info, idx, dataKeys)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Add(1, info.Size)
		if err != nil {
			report.Unusable = append(report.Unusable, scrubFinding(info.Ref, err))
			continue
		}
		report.Blobs++
		report.Bytes += info.Size
		if meta == nil {
			continue // a record or index segment, recorded already
		}
		if _, ok := idx.records[info.Ref]; ok {
			report.FromIndex++
		}
		if err := w.add(ctx, meta, idx); err != nil {
			return err
		}
	}
	if err := w.addNoted(ctx, driver, idx); err != nil {
		return err
	}
	return w.finish(ctx)
}

// addNoted makes explicit stores of the blobs the volume's notes name
// (explicit_notes.go) that the index does not know as such: put, or
// written into ref/, after the index was written.
func (w *indexWriter) addNoted(ctx context.Context, driver blobstore.Driver, idx *recoveredIndex) error {
	return explicitNotes(ctx, driver, explicitNotePrefix, func(_ string, ref blobstore.Ref) error {
		if rec, ok := idx.records[ref]; !ok || rec.record.Explicit {
			return nil // an explicit store already (or not indexed: one too)
		}
		w.noted = append(w.noted, ref) // recorded by finish, if the volume holds it
		return nil
	})
}

func listBlobs(ctx context.Context, driver blobstore.Driver) ([]blobstore.BlobInfo, int64, error) {
	var blobs []blobstore.BlobInfo
	var total int64
	err := driver.List(ctx, func(info blobstore.BlobInfo) error {
		if !diskaccess.IsVolumeDescriptor(info.Ref) {
			blobs = append(blobs, info)
			total += info.Size
		}
		return nil
	})
	return blobs, total, err
}

// verifyFound checks one blob found on the volume and returns the
// metadata to record (nil: recorded already).
func (s *Store) verifyFound(ctx context.Context, driver blobstore.Driver, info blobstore.BlobInfo, idx *recoveredIndex, keys []diskaccess.DataKey) (*diskaccess.BlobMeta, error) {
	if ok, err := s.meta.QueryBlobExists(ctx, info.Ref); err != nil || ok {
		return nil, err
	}
	rec, ok := idx.records[info.Ref]
	if !ok {
		return diskaccess.Recognize(ctx, driver, info.Ref, keys, info.ModTime.UTC())
	}
	meta := rec.metaOf()
	if err := diskaccess.CheckStored(ctx, driver, meta); err != nil {
		return nil, err
	}
	return meta, nil
}

// indexWriter records verified blobs in batches, then what the index said
// of their mtimes and explicit stores; blobs known from an index lose the
// marks that would put them in the next index again.
//
// A blob is an explicit store if its index record says so, or says nothing
// (written before explicit stores were kept), or if no index lists it:
// stored after the last snapshot, by put, through ref/ or as a file's
// content, there is no telling which, and a gc must not remove what was
// put before the loss.
type indexWriter struct {
	store    *Store
	volume   int
	batch    []*diskaccess.BlobMeta
	mtimes   []snapshot.BlobRecord
	explicit []blobstore.Ref
	noted    []blobstore.Ref // indexed as no explicit store, but noted as one since
	report   *RecoverReport
	indexed  map[string][]badger.IndexMark // by key id
}

func (w *indexWriter) add(ctx context.Context, meta *diskaccess.BlobMeta, idx *recoveredIndex) error {
	rec, ok := idx.records[meta.Ref]
	if ok {
		w.indexed[rec.keyID] = append(w.indexed[rec.keyID], badger.IndexMark{Ref: meta.Ref})
		if !rec.record.Mtime.IsZero() {
			w.mtimes = append(w.mtimes, rec.record)
		}
	}
	if !ok || rec.record.Explicit {
		w.explicit = append(w.explicit, meta.Ref)
	}
	if w.batch = append(w.batch, meta); len(w.batch) < 256 {
		return nil
	}
	return w.flush(ctx)
}

func (w *indexWriter) flush(ctx context.Context) error {
	err := w.store.meta.WriteBlobsCreated(ctx, w.batch, w.volume)
	w.batch = w.batch[:0]
	return err
}

func (w *indexWriter) finish(ctx context.Context) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	for _, rec := range w.mtimes {
		if err := w.store.meta.SetBlobMtime(ctx, rec.Ref, rec.Mtime.UnixNano()); err != nil {
			return err
		}
	}
	for _, ref := range w.noted {
		found, err := w.store.meta.QueryBlobExists(ctx, ref)
		if err != nil {
			return err
		}
		if found {
			w.explicit = append(w.explicit, ref)
		}
	}
	if err := w.store.meta.MarkExplicitBlobs(ctx, w.explicit); err != nil {
		return err
	}
	w.report.Explicit = len(w.explicit)
	for keyID, blobs := range w.indexed {
		if err := w.store.meta.ClearIndexChanges(ctx, keyID, blobs); err != nil {
			return err
		}
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
