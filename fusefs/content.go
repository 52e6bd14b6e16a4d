package fusefs

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// contentBuffer holds the content of a file being written: spooled (to
// disk past a small size), and hashed on the way while the writes come in
// order, so that storing it at close reads it once. Not safe for
// concurrent use: the owner's lock guards it.
type contentBuffer struct {
	spool  *spool
	hash   hash.Hash // SHA-256 of spool[:hashed]
	hashed int64     // -1 once a write came out of order
}

func newContentBuffer(cfg *Config) *contentBuffer {
	return &contentBuffer{spool: &spool{dir: cfg.SpoolDir, spaceCheck: cfg.SpaceCheck}, hash: sha256.New()}
}

func (b *contentBuffer) Size() int64 { return b.spool.size }

func (b *contentBuffer) WriteAt(data []byte, off int64) (int, error) {
	n, err := b.spool.WriteAt(data, off)
	if b.hashed >= 0 && off == b.hashed {
		b.hash.Write(data[:n])
		b.hashed += int64(n)
	} else {
		b.hashed = -1 // out of order: hash everything when asked
	}
	return n, err
}

func (b *contentBuffer) ReadAt(dest []byte, off int64) (int, error) {
	return b.spool.ReadAt(dest, off)
}

func (b *contentBuffer) Truncate(size int64) error {
	if size == b.spool.size {
		return nil
	}
	if size < b.hashed {
		b.hashed = -1
	}
	return b.spool.Truncate(size)
}

// Ref returns the SHA-256 of the content: the hash taken on the way, or
// one pass over the spool.
func (b *contentBuffer) Ref() (blobstore.Ref, error) {
	if b.hashed != b.spool.size {
		h := sha256.New()
		if _, err := io.Copy(h, b.Reader()); err != nil {
			return blobstore.Ref{}, err
		}
		b.hash, b.hashed = h, b.spool.size
	}
	return blobstore.Ref(b.hash.Sum(nil)), nil
}

// Reader reads the whole content from the start.
func (b *contentBuffer) Reader() io.Reader { return b.spool.Reader() }

func (b *contentBuffer) Close() error { return b.spool.Close() }

// storeContent stores content, whose ref the caller took, as a blob of
// collection on the mounted volume, recorded by record (nil: the store
// records it; see diskaccess.BlobWriter.CommitWith), and returns the
// blob's metadata.
func (f *FS) storeContent(ctx context.Context, collection string, ref blobstore.Ref, content *contentBuffer, record diskaccess.RecordFunc) (*diskaccess.BlobMeta, error) {
	meta, err := f.storeContentOnce(ctx, collection, ref, content, record)
	if errors.Is(err, diskaccess.ErrRemovedWhileWritten) {
		// A garbage collection took the blob this content deduplicated to
		// while it was read: the spool still has it, so it is stored anew.
		meta, err = f.storeContentOnce(ctx, collection, ref, content, record)
	}
	return meta, err
}

func (f *FS) storeContentOnce(ctx context.Context, collection string, ref blobstore.Ref, content *contentBuffer, record diskaccess.RecordFunc) (*diskaccess.BlobMeta, error) {
	opts := diskaccess.WriteOptions{MaybeCompressible: true, ContentVerified: true}
	w, err := f.cfg.Controller.NewBlobWriter(ctx, f.cfg.Volume, collection, ref, opts)
	if err != nil {
		return nil, err
	}
	if _, err := w.ReadFrom(content.Reader()); err != nil {
		w.Abort()
		return nil, err
	}
	return w.CommitWith(ctx, record)
}
