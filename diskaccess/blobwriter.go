package diskaccess

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"

	"github.com/stofuse/stofuse/blobstore"
)

// WriteOptions say how a BlobWriter treats what it is given.
type WriteOptions struct {
	// MaybeCompressible: try LZ4 on each frame (false for data known not
	// to shrink).
	MaybeCompressible bool
	// ContentVerified: the caller has checked that the content hashes to
	// the ref (while receiving it, say), so it is not hashed again. The
	// ref is still bound to every stored frame.
	ContentVerified bool
}

// errWriterDone: a Write, Commit or Abort after Commit or Abort.
var errWriterDone = errors.New("blob writer already committed or aborted")

// BlobWriter stores one blob whose plaintext is pushed to it: Write (or
// ReadFrom) the content, then Commit, which returns the blob's metadata;
// or Abort, which stores nothing.
//
// A blob is stored in two phases. Writing seals the frames into a staged
// blob on the volume (blobstore.Stage) without holding anything another
// writer waits for; Commit then takes the ref's lock only to check the
// content, publish the staged bytes under the ref and record the blob. So
// two writers of one ref never wait for each other's unfinished content,
// and the ref is still stored once: the second Commit finds it recorded
// and drops its own copy.
//
// A blob the metadata knows already is not sealed again: its content is
// only hashed, and Commit copies the stored bytes from another volume if
// this one lacks them, so that every copy has the same bytes.
//
// Frames past the first are sealed and written by a goroutine of the
// writer, so that the caller's next Write overlaps the sealing of the
// last. A BlobWriter is not safe for concurrent use.
type BlobWriter struct {
	c        *Controller
	volumeId int
	ref      blobstore.Ref
	hash     hash.Hash // nil: the content is not checked (ContentVerified)
	size     int64     // plaintext bytes written

	known *BlobMeta // the metadata had the blob at open: nothing is sealed

	keyId  string
	staged blobstore.StagedBlob
	sealer *frameSealer
	frame  *[]byte    // the frame being filled; full means more may follow
	pipe   *framePipe // seals full frames in the background; nil until one is full

	err  error // the first failure: every later call returns it
	done bool  // committed or aborted
}

// NewBlobWriter starts blob ref on volumeId, sealed (if new) with the key
// collection collId uses for new blobs.
func (c *Controller) NewBlobWriter(ctx context.Context, volumeId int, collId string, ref blobstore.Ref, opts WriteOptions) (*BlobWriter, error) {
	driver, err := c.driver(volumeId)
	if err != nil {
		return nil, err
	}
	w := &BlobWriter{c: c, volumeId: volumeId, ref: ref}
	if !opts.ContentVerified {
		w.hash = sha256.New()
	}
	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, nil)
	switch {
	case err == nil:
		w.known = meta
		return w, nil
	case !isNotExist(err):
		return nil, err
	}
	keyId, key, err := c.metadataStore.QueryCollectionEncryptionKeyForNewBlobs(ctx, collId)
	if err != nil {
		return nil, fmt.Errorf("collection %q: %w", collId, err)
	}
	var salt [saltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	staged, err := blobstore.Stage(ctx, driver, ref, c.spoolDir)
	if err != nil {
		return nil, fmt.Errorf("writing blob %s to volume %d: %w", ref, volumeId, err)
	}
	sealer, err := newFrameSealer(ref, key, salt, c.frameShift, c.sealBuffers(), opts.MaybeCompressible, staged)
	if err != nil {
		staged.Discard()
		return nil, err
	}
	w.keyId, w.staged, w.sealer, w.frame = keyId, staged, sealer, c.frameBuffer()
	return w, nil
}

// Write implements io.Writer.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := len(p)
	w.took(p)
	for w.sealer != nil && len(p) > 0 {
		if err := w.makeRoom(); err != nil {
			return 0, err
		}
		frame := *w.frame
		k := copy(frame[len(frame):cap(frame)], p)
		*w.frame = frame[:len(frame)+k]
		p = p[k:]
	}
	return n, nil
}

// ReadFrom implements io.ReaderFrom: content is read straight into the
// frame being filled.
func (w *BlobWriter) ReadFrom(r io.Reader) (int64, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	if w.sealer == nil { // only hashed
		buf := w.c.frameBuffer()
		defer w.c.frames.Put(buf)
		return io.CopyBuffer(hashOnly{w}, r, (*buf)[:cap(*buf)])
	}
	var total int64
	for {
		frame := *w.frame
		if len(frame) < cap(frame) {
			n, err := r.Read(frame[len(frame):cap(frame)])
			w.took(frame[len(frame) : len(frame)+n])
			*w.frame = frame[:len(frame)+n]
			total += int64(n)
			if err != nil {
				return total, eofIsNil(err)
			}
			continue
		}
		// The frame is full: it is the last unless more follows, so the
		// next read goes to a new one, and only bytes there make it not
		// the last.
		next := w.c.frameBuffer()
		n, err := r.Read((*next)[:cap(*next)])
		if n > 0 {
			*next = (*next)[:n]
			if err := w.pass(next); err != nil {
				return total, err
			}
			w.took(*next)
			total += int64(n)
		} else {
			w.c.frames.Put(next)
		}
		if err != nil {
			return total, eofIsNil(err)
		}
	}
}

func eofIsNil(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// hashOnly is the writer ReadFrom copies a known blob's content to.
type hashOnly struct{ w *BlobWriter }

func (h hashOnly) Write(p []byte) (int, error) { h.w.took(p); return len(p), nil }

func (w *BlobWriter) usable() error {
	if w.done {
		return errWriterDone
	}
	return w.err
}

// took counts and hashes content as it arrives.
func (w *BlobWriter) took(p []byte) {
	w.size += int64(len(p))
	if w.hash != nil {
		w.hash.Write(p)
	}
}

// makeRoom passes a full frame on, since more content follows it, and
// starts a new one.
func (w *BlobWriter) makeRoom() error {
	if len(*w.frame) < cap(*w.frame) {
		return nil
	}
	return w.pass(w.c.frameBuffer())
}

// pass hands the full frame to the pipe (not the last: next follows it)
// and makes next the frame being filled.
func (w *BlobWriter) pass(next *[]byte) error {
	if w.pipe == nil {
		w.pipe = startFramePipe(w.sealer, w.c.frames.Put)
	}
	if err := w.pipe.send(w.frame); err != nil {
		w.c.frames.Put(next)
		w.err = err
		return err
	}
	w.frame = next
	return nil
}

// Size is how many plaintext bytes were written.
func (w *BlobWriter) Size() int64 { return w.size }

// Commit checks the content against the ref (unless ContentVerified),
// stores the blob under it and records it, and returns its metadata. On a
// mismatch it returns an ErrRefMismatch error and nothing is stored or
// recorded. If recording a new blob fails, its stored bytes stay on the
// volume, unrecorded (an orphan, which a scrub counts). The BlobWriter is
// finished after Commit, whatever it returns.
func (w *BlobWriter) Commit(ctx context.Context) (*BlobMeta, error) {
	return w.CommitWith(ctx, nil)
}

// RecordFunc records, for BlobWriter.CommitWith, a committed blob with
// whatever the caller records about it. created true: the blob is new on
// this volume, stored and not recorded yet, and RecordFunc MUST record it
// (what MetadataStore.WriteBlobCreated does, for meta and the writer's
// volume), preferably in the transaction of the caller's own part. created
// false: the blob is known and already recorded on the volume (it was, or
// Commit copied it here and recorded the copy), and only the caller's part
// is left. meta.Volumes is the volumes the blob is recorded on once
// RecordFunc succeeds. It runs while the writer holds the ref's lock: it
// must not write this ref with the Controller. An error means nothing of
// it was recorded.
type RecordFunc func(ctx context.Context, meta *BlobMeta, created bool) error

// CommitWith is Commit, with record (nil: WriteBlobCreated when created)
// recording the blob: a caller who records something with the blob (a
// file's content commit) does both in one metadata transaction. If record
// fails, CommitWith returns its error and nothing is recorded: a new
// blob's bytes, already published, stay on the volume unrecorded (an
// orphan, as when Commit's WriteBlobCreated fails); a known blob stays as
// it was, and a copy Commit made here stays recorded.
func (w *BlobWriter) CommitWith(ctx context.Context, record RecordFunc) (*BlobMeta, error) {
	if w.done {
		return nil, errWriterDone
	}
	defer w.Abort() // frees what is left; after a Publish it discards nothing
	if w.err != nil {
		return nil, w.err
	}
	if w.hash != nil {
		var got blobstore.Ref
		w.hash.Sum(got[:0])
		if got != w.ref {
			return nil, fmt.Errorf("%w: content hashes to %s, not %s", ErrRefMismatch, got, w.ref)
		}
	}
	if w.sealer != nil {
		if err := w.sealLast(); err != nil {
			return nil, fmt.Errorf("writing blob %s to volume %d: %w", w.ref, w.volumeId, err)
		}
	}
	unlock := w.c.refLocks.lock(w.ref)
	defer unlock()
	meta, err := w.c.metadataStore.QueryBlobMetadata(ctx, w.ref, nil)
	switch {
	case err == nil: // known at open, or stored by another writer since
		return w.recordKnown(ctx, meta, record)
	case !isNotExist(err):
		return nil, err
	case w.known != nil:
		return nil, fmt.Errorf("blob %s: %w", w.ref, ErrRemovedWhileWritten)
	}
	if err := w.staged.Publish(ctx); err != nil {
		return nil, fmt.Errorf("writing blob %s to volume %d: %w", w.ref, w.volumeId, err)
	}
	meta = newBlobMeta(w.ref, w.keyId, w.sealer.Result(), w.c.now())
	meta.Volumes = []int{w.volumeId}
	if record == nil {
		err = w.c.metadataStore.WriteBlobCreated(ctx, meta, w.volumeId)
	} else {
		err = record(ctx, meta, true)
	}
	if err != nil {
		return nil, err
	}
	return meta, nil
}

// recordKnown keeps a known blob on the writer's volume and lets record
// do the caller's part; the caller holds the ref's lock.
func (w *BlobWriter) recordKnown(ctx context.Context, meta *BlobMeta, record RecordFunc) (*BlobMeta, error) {
	meta, err := w.c.keepOnVolume(ctx, meta, w.volumeId)
	if err != nil || record == nil {
		return meta, err
	}
	if err := record(ctx, meta, false); err != nil {
		return nil, err
	}
	return meta, nil
}

// sealLast waits for the frames in the pipe, then seals the last one.
func (w *BlobWriter) sealLast() error {
	if w.pipe != nil {
		err := w.pipe.close()
		w.pipe = nil
		if err != nil {
			return err
		}
	}
	return w.sealer.frame(*w.frame, true)
}

// keepOnVolume makes a known blob stored on volumeId too, copying its
// stored bytes from the best volume that has it, and returns its metadata
// with volumeId in it. The caller holds the ref's lock.
func (c *Controller) keepOnVolume(ctx context.Context, meta *BlobMeta, volumeId int) (*BlobMeta, error) {
	if slices.Contains(meta.Volumes, volumeId) {
		return meta, nil
	}
	from, err := c.BestVolumeId(meta.Volumes)
	if err != nil {
		return nil, fmt.Errorf("blob %s is stored on volumes %v, none of them mounted, so it cannot be copied to volume %d: %w",
			meta.Ref, meta.Volumes, volumeId, err)
	}
	if err := c.replicateLocked(ctx, meta, from, volumeId); err != nil {
		return nil, err
	}
	meta.Volumes = append(meta.Volumes, volumeId)
	return meta, nil
}

// Abort drops what was written; nothing is stored. After Commit, or a
// second time, it does nothing.
func (w *BlobWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.pipe != nil {
		w.pipe.close()
		w.pipe = nil
	}
	if w.staged != nil {
		w.staged.Discard()
	}
	if w.frame != nil {
		w.c.frames.Put(w.frame)
		w.frame = nil
	}
	if w.sealer != nil {
		w.c.seals.Put(w.sealer.bufs)
		w.sealer = nil
	}
}

// framePipe seals and writes full frames in a goroutine, in order, while
// the writer fills the next. At most pipeDepth frames wait in it.
type framePipe struct {
	frames chan *[]byte
	done   chan struct{}
	mu     sync.Mutex
	err    error // the sealer's first failure; guarded by mu
}

const pipeDepth = 2

func startFramePipe(s *frameSealer, free func(any)) *framePipe {
	p := &framePipe{frames: make(chan *[]byte, pipeDepth), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for frame := range p.frames {
			if p.failure() == nil {
				if err := s.frame(*frame, false); err != nil {
					p.mu.Lock()
					p.err = err
					p.mu.Unlock()
				}
			}
			free(frame)
		}
	}()
	return p
}

func (p *framePipe) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// send queues a full frame, which the pipe frees; once sealing has failed
// it frees nothing and returns the failure.
func (p *framePipe) send(frame *[]byte) error {
	if err := p.failure(); err != nil {
		return err
	}
	p.frames <- frame
	return nil
}

// close waits for the queued frames and returns the first failure.
func (p *framePipe) close() error {
	close(p.frames)
	<-p.done
	return p.failure()
}
