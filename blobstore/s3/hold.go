package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore"
)

// The Driver contract says a reader from RawOpen keeps reading the blob it
// opened after the blob is replaced or removed. A local file does that for
// free; an S3 object does not: once replaced or deleted, its old bytes are
// gone (without bucket versioning, which stofuse does not require).
//
// So, within this process: every RawOpen reader pins its object's ETag
// here. Before Remove deletes, or RawStore overwrites, an object that a
// reader pins, the object is copied server-side to a hold key (PREFIX +
// "hold/<ref>.<random>"), and the readers continue from the copy. The last
// reader to close deletes it; Sweep deletes holds that a crashed process
// left behind. Readers in other processes are not protected: their next
// read fails with ErrObjectChanged, never returning bytes of another blob.

// openReaders counts open RawOpen readers by the object version they read.
type openReaders struct {
	mu sync.Mutex // guards pins and every pin in it
	// pins maps a ref and the ETag a reader pinned to the readers of that
	// version.
	pins map[pinKey]*pin
}

type pinKey struct {
	ref  blobstore.Ref
	etag string
}

// pin is the shared state of the readers of one object version.
type pin struct {
	readers int
	// holdKey and holdETag name the copy kept after the object under the
	// ref's key was replaced or removed; empty until then.
	holdKey, holdETag string
}

func (o *openReaders) open(ref blobstore.Ref, etag string) *pin {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pins == nil {
		o.pins = map[pinKey]*pin{}
	}
	p := o.pins[pinKey{ref, etag}]
	if p == nil {
		p = &pin{}
		o.pins[pinKey{ref, etag}] = p
	}
	p.readers++
	return p
}

// close drops one reader of p and returns the hold key to delete when it
// was the last one.
func (o *openReaders) close(ref blobstore.Ref, etag string, p *pin) (orphanedHold string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p.readers--
	if p.readers > 0 {
		return ""
	}
	delete(o.pins, pinKey{ref, etag})
	return p.holdKey
}

// hold returns the copy kept for p, if any.
func (o *openReaders) hold(p *pin) (key, etag string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return p.holdKey, p.holdETag
}

// unheld returns the ETags of ref's versions that readers pin and that have
// no copy yet.
func (o *openReaders) unheld(ref blobstore.Ref) map[string]*pin {
	o.mu.Lock()
	defer o.mu.Unlock()
	var found map[string]*pin
	for k, p := range o.pins {
		if k.ref == ref && p.holdKey == "" {
			if found == nil {
				found = map[string]*pin{}
			}
			found[k.etag] = p
		}
	}
	return found
}

// setHold records a copy for p. It returns false if p's last reader closed
// meanwhile, in which case the caller deletes the copy.
func (o *openReaders) setHold(p *pin, key, etag string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p.readers == 0 {
		return false
	}
	p.holdKey, p.holdETag = key, etag
	return true
}

// isHeld reports whether key is a hold of a reader of this process.
func (o *openReaders) isHeld(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.pins {
		if p.holdKey == key {
			return true
		}
	}
	return false
}

// preservingReaders runs change, which replaces or removes ref's object,
// after copying the object aside if a reader of this process pins it. When
// no reader does (the usual case) it costs one map lookup. A reader that
// opens ref while change runs, after the check, is not protected and may
// get ErrObjectChanged later.
func (s *Store) preservingReaders(ctx context.Context, ref blobstore.Ref, change func(context.Context) error) error {
	if s.readers.unheld(ref) == nil {
		return change(ctx)
	}
	s.preserveMu.Lock()
	defer s.preserveMu.Unlock()
	if err := s.holdCurrent(ctx, ref); err != nil {
		return err
	}
	return change(ctx)
}

// holdCurrent copies ref's current object to a hold key if a reader pins
// its ETag. The copy is conditional on that ETag, so it never holds a
// version other than the one the readers read.
func (s *Store) holdCurrent(ctx context.Context, ref blobstore.Ref) error {
	unheld := s.readers.unheld(ref)
	if unheld == nil {
		return nil
	}
	key := s.key(ref)
	info, err := s.statKey(ctx, key)
	if err != nil {
		return err
	}
	p := unheld[info.ETag]
	if p == nil {
		return nil // the readers read a version already gone
	}
	holdKey := s.prefix + holdDir + ref.String() + "." + randomHex(8)
	var copied minio.UploadInfo
	err = s.retry(ctx, "hold copy of", key, func(ctx context.Context) error {
		dst := minio.CopyDestOptions{Bucket: s.bucket, Object: holdKey}
		src := minio.CopySrcOptions{Bucket: s.bucket, Object: key, MatchETag: info.ETag}
		var err error
		if info.Size <= maxPartSize {
			copied, err = s.core.Client.CopyObject(ctx, dst, src)
		} else {
			// Past 5 GiB only a multipart copy works. The client checks
			// the source's ETag at its start, not at each part.
			copied, err = s.core.ComposeObject(ctx, dst, src)
		}
		return err
	})
	if isPreconditionFailed(err) {
		return nil // replaced since the stat: nothing left to hold
	}
	if err != nil {
		return err
	}
	if !s.readers.setHold(p, holdKey, copied.ETag) {
		return s.removeHold(holdKey)
	}
	return nil
}

// removeHold deletes a hold key. It runs when the last reader closes,
// possibly after the caller's context ended, so it has its own.
func (s *Store) removeHold(holdKey string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.retry(ctx, "remove hold", holdKey, func(ctx context.Context) error {
		return s.core.RemoveObject(ctx, s.bucket, holdKey, minio.RemoveObjectOptions{})
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
