package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// ErrChanged: content being put changed between its hashing and its
// storing; nothing was stored.
var ErrChanged = errors.New("the file changed while it was being stored; nothing was stored")

// Put stores content as one blob on volume, sealed with collection's key:
// it hashes content, then writes it checked against that hash (content
// that changed in between is ErrChanged, not stored wrong). A blob the
// volume has already is not stored again. Either way the blob is an
// explicit store, kept until it is released (Release), recorded with the
// blob. The bytes written are counted into r. It returns the blob's ref
// and plaintext size.
func (s *Store) Put(ctx context.Context, volumeID int, collection string, content io.ReadSeeker, r Reporter) (blobstore.Ref, int64, error) {
	if err := s.ensureKeys(ctx, volumeID); err != nil {
		return blobstore.Ref{}, 0, err
	}
	h := sha256.New()
	size, err := io.Copy(h, content)
	if err != nil {
		return blobstore.Ref{}, 0, err
	}
	ref := blobstore.Ref(h.Sum(nil))
	meta, promoted, err := s.putOnce(ctx, volumeID, collection, ref, content, r)
	if errors.Is(err, diskaccess.ErrRemovedWhileWritten) {
		// A garbage collection beside it removed the blob it found stored:
		// the content is read again and stored anew.
		meta, promoted, err = s.putOnce(ctx, volumeID, collection, ref, content, r)
	}
	if errors.Is(err, diskaccess.ErrRefMismatch) {
		return ref, 0, ErrChanged
	}
	if err == nil && promoted {
		err = s.noteExplicit(ctx, meta) // explicit_notes.go
	}
	return ref, size, err
}

// putOnce writes content, from its start, as blob ref and records it as
// an explicit store; promoted reports a blob recorded before that was no
// explicit store.
func (s *Store) putOnce(ctx context.Context, volumeID int, collection string, ref blobstore.Ref, content io.ReadSeeker, r Reporter) (meta *diskaccess.BlobMeta, promoted bool, err error) {
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		return nil, false, err
	}
	w, err := s.ctl.NewBlobWriter(ctx, volumeID, collection, ref, diskaccess.WriteOptions{MaybeCompressible: true})
	if err != nil {
		return nil, false, err
	}
	if _, err := w.ReadFrom(&countingReader{r: content, to: reporterOr(r)}); err != nil {
		w.Abort()
		return nil, false, err
	}
	meta, err = w.CommitWith(ctx, func(ctx context.Context, meta *diskaccess.BlobMeta, created bool) (err error) {
		// The record when it is new, and the mark, in one transaction.
		promoted, err = s.meta.RecordExplicitStore(ctx, meta, volumeID, created)
		return err
	})
	return meta, promoted, err
}

// Release ends blob ref's explicit store (stofuse put, a write into ref/)
// and reports whether it had one: a garbage collection may then remove
// the blob, unless something else keeps it (a file, a retained snapshot,
// the grace period). Until then the blob stays readable and listed in
// ref/, and a put or a write of it into ref/ makes it an explicit store
// again. Releasing a released blob changes nothing; a ref the store does
// not know is ErrNoBlob.
func (s *Store) Release(ctx context.Context, ref blobstore.Ref) (bool, error) {
	released, err := s.meta.ReleaseExplicit(ctx, ref)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%w %s", ErrNoBlob, ref)
	}
	if err != nil {
		return false, err
	}
	meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
	if err != nil {
		return released, err
	}
	return released, s.dropExplicitNotes(ctx, meta)
}

// countingReader counts bytes read into a Reporter.
type countingReader struct {
	r  io.Reader
	to Reporter
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.to.Add(0, int64(n))
	return n, err
}

// ErrNoBlob: the store has no blob of that ref.
var ErrNoBlob = errors.New("no blob")

// Cat writes blob ref's plaintext to w, read from the cheapest volume
// that holds it, every byte verified. If that copy is damaged or lost, it
// goes on from the same offset with the next volume (warning r), so the
// output is whole. A ref the store does not know is ErrNoBlob; a store
// opened without a key is ErrLocked.
func (s *Store) Cat(ctx context.Context, ref blobstore.Ref, w io.Writer, r Reporter) error {
	if s.meta.Ring() == nil {
		return ErrLocked
	}
	meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w %s", ErrNoBlob, ref)
	}
	if err != nil {
		return err
	}
	order := s.ctl.ReadOrder(meta.Volumes)
	if len(order) == 0 {
		return s.explainUnavailable(meta.Volumes, fmt.Errorf("no volume holding blob %s is available", ref))
	}
	var written int64
	for i, volume := range order {
		n, err := s.catFrom(ctx, ref, volume, written, w)
		written += n
		if err == nil {
			return nil
		}
		if !errors.Is(err, diskaccess.ErrCorrupt) || i == len(order)-1 {
			return err
		}
		reporterOr(r).Warn(fmt.Sprintf("%v; reading on from volume %s", err, s.VolumeName(ctx, order[i+1])))
	}
	return nil
}

// catFrom writes blob ref from offset on, read from volume with frames
// opened ahead.
func (s *Store) catFrom(ctx context.Context, ref blobstore.Ref, volume int, offset int64, w io.Writer) (int64, error) {
	blob, err := s.ctl.OpenBlob(ctx, ref, s.meta.Ring(), volume)
	if err != nil {
		return 0, err
	}
	stream := blob.Stream(offset)
	defer stream.Close()
	return io.Copy(w, stream)
}

// explainUnavailable says why none of the volumes holding a blob is mounted.
func (s *Store) explainUnavailable(volumes []int, err error) error {
	var reasons []string
	for _, id := range volumes {
		if why := s.unavailable.get(id); why != nil {
			reasons = append(reasons, why.Error())
		}
	}
	if len(reasons) == 0 {
		return err
	}
	return errors.New(strings.Join(reasons, "; "))
}

// BlobStat is what the store records about a blob.
type BlobStat struct {
	Ref        blobstore.Ref `json:"ref"`
	Size       int64         `json:"size"`
	Stored     int64         `json:"stored_size"`
	Compressed bool          `json:"compressed"`
	CRC32C     []byte        `json:"-"`
	Volumes    []string      `json:"volumes"`
	KeyID      string        `json:"key_id"`
	Created    time.Time     `json:"created"`
	Files      int           `json:"files"` // files of files/ whose content it is
	// Explicit: stored with put or through ref/, and not released.
	Explicit bool `json:"explicit"`
}

// Stat returns what the store records about blob ref; needs no key. A ref
// the store does not know is ErrNoBlob.
func (s *Store) Stat(ctx context.Context, ref blobstore.Ref) (*BlobStat, error) {
	meta, err := s.meta.QueryBlobMetadata(ctx, ref, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s", ErrNoBlob, ref)
	}
	if err != nil {
		return nil, err
	}
	st := &BlobStat{Ref: ref, Size: meta.RealSize, Stored: meta.SizeOnDisk, Compressed: meta.IsCompressed,
		CRC32C: meta.ExpectedCrc32, KeyID: meta.EncryptionKeyId, Created: meta.Created}
	for _, id := range meta.Volumes {
		st.Volumes = append(st.Volumes, s.VolumeName(ctx, id))
	}
	if st.Files, err = s.meta.FilesUsing(ctx, ref); err != nil {
		return nil, err
	}
	if st.Explicit, err = s.meta.IsExplicit(ctx, ref); err != nil {
		return nil, err
	}
	return st, nil
}
