package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/badger"
)

// Explicit-store notes. A blob's explicit store reaches the volumes with
// the collection's next blob index (a snapshot of a changed tree). A new
// blob needs nothing before that: a recovery keeps as an explicit store
// every blob no index lists. But a blob that an index lists already as no
// explicit store (a file's content, a tree blob) and that is then put, or
// written into ref/, would come back from a recovery made before the next
// index as no explicit store, and a gc after it could remove a blob the
// user stored. So that promotion is noted on every volume holding the
// blob at once, by the named object
//
//	explicit/<collection key id>/<ref, hex>
//
// (content: the ref in hex and a newline), which a recovery reads, a
// release removes, a snapshot whose index holds the blob as an explicit
// store removes from its volume (writtenIndex.covered), and a replicate
// copies.
const explicitNotePrefix = "explicit/"

func explicitNote(keyID string, ref blobstore.Ref) string {
	return explicitNotePrefix + keyID + "/" + ref.String()
}

// MarkExplicit makes the recorded blob ref an explicit store, as a write
// into ref/ does (also when it found the blob stored), noting it on the
// volumes if it was recorded before as something else. A blob not
// recorded is an fs.ErrNotExist error. It may be called any number of
// times.
func (s *Store) MarkExplicit(ctx context.Context, ref blobstore.Ref) error {
	promoted, err := s.meta.MarkExplicit(ctx, ref)
	if err != nil || promoted == nil {
		return err
	}
	return s.noteExplicit(ctx, promoted)
}

// noteExplicit writes blob meta's note on every mounted volume that holds
// it; a volume not mounted gets none (its index may come back without the
// explicit store).
func (s *Store) noteExplicit(ctx context.Context, meta *diskaccess.BlobMeta) error {
	for _, id := range meta.Volumes {
		if !s.ctl.IsMounted(id) {
			continue
		}
		driver, err := s.ctl.Driver(id)
		if err != nil {
			return err
		}
		note := explicitNote(meta.EncryptionKeyId, meta.Ref)
		if err := driver.PutObject(ctx, note, strings.NewReader(meta.Ref.String()+"\n")); err != nil {
			return fmt.Errorf("volume %s: noting blob %s as an explicit store: %w", s.VolumeName(ctx, id), meta.Ref, err)
		}
	}
	return nil
}

// dropExplicitNotes removes blob meta's notes from the mounted volumes; a
// note that is not there is no error.
func (s *Store) dropExplicitNotes(ctx context.Context, meta *diskaccess.BlobMeta) error {
	for _, id := range meta.Volumes {
		if !s.ctl.IsMounted(id) {
			continue
		}
		driver, err := s.ctl.Driver(id)
		if err != nil {
			return err
		}
		err = driver.RemoveObject(ctx, explicitNote(meta.EncryptionKeyId, meta.Ref))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("volume %s: removing the explicit-store note of %s: %w", s.VolumeName(ctx, id), meta.Ref, err)
		}
	}
	return nil
}

// explicitNotes lists the refs noted under prefix on a volume (all
// collections' with explicitNotePrefix, one collection's with its key id
// after it), with the notes' names. Names that are not notes are skipped.
func explicitNotes(ctx context.Context, driver blobstore.Driver, prefix string, fn func(name string, ref blobstore.Ref) error) error {
	return driver.ListObjects(ctx, prefix, func(o blobstore.ObjectInfo) error {
		_, hex, ok := strings.Cut(strings.TrimPrefix(o.Name, explicitNotePrefix), "/")
		ref, err := blobstore.ParseRef(hex)
		if !ok || err != nil {
			return nil
		}
		return fn(o.Name, ref)
	})
}

// replicateNotes copies to volume to the notes of the blobs it holds.
func (s *Store) replicateNotes(ctx context.Context, src, dst blobstore.Driver, to int) error {
	type note struct {
		name string
		ref  blobstore.Ref
	}
	there := map[string]bool{} // notes the target has already
	err := explicitNotes(ctx, dst, explicitNotePrefix, func(name string, _ blobstore.Ref) error {
		there[name] = true
		return nil
	})
	if err != nil {
		return err
	}
	var notes []note
	err = explicitNotes(ctx, src, explicitNotePrefix, func(name string, ref blobstore.Ref) error {
		if !there[name] {
			notes = append(notes, note{name, ref})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range notes {
		meta, err := s.meta.QueryBlobMetadata(ctx, n.ref, nil)
		if err != nil || !slices.Contains(meta.Volumes, to) {
			continue // not there (yet): nor is its note
		}
		if err := dst.PutObject(ctx, n.name, strings.NewReader(n.ref.String()+"\n")); err != nil {
			return fmt.Errorf("copying the explicit-store note of %s: %w", n.ref, err)
		}
	}
	return nil
}

// MountCatalog is the metadata store as a mount's catalog, with explicit
// stores made through ref/ noted on the volumes (fusefs.ExplicitStores).
type MountCatalog struct {
	*badger.Store
	store *Store
}

// NewMountCatalog returns s's catalog for a mount.
func NewMountCatalog(s *Store) *MountCatalog { return &MountCatalog{Store: s.meta, store: s} }

// MarkExplicit is Store.MarkExplicit.
func (c *MountCatalog) MarkExplicit(ctx context.Context, ref blobstore.Ref) error {
	return c.store.MarkExplicit(ctx, ref)
}

// RecordExplicit records the blob a write into ref/ commits, under its
// ref's lock, as an explicit store (fusefs.ExplicitStores), as Put does,
// noting a promotion on the volumes.
func (c *MountCatalog) RecordExplicit(ctx context.Context, meta *diskaccess.BlobMeta, volumeID int, created bool) error {
	promoted, err := c.store.meta.RecordExplicitStore(ctx, meta, volumeID, created)
	if err != nil || !promoted {
		return err
	}
	return c.store.noteExplicit(ctx, meta)
}
