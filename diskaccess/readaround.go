package diskaccess

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"

	"github.com/stofuse/stofuse/blobstore"
)

// Reading around damage. A blob kept on several volumes has a copy on
// each, and OpenBlobAnyCopy reads whichever copy gives the bytes, frame by
// frame: copies damaged in different frames still read whole. Every
// damaged or missing copy a read meets is reported, once, to the damage
// handler (WithDamageHandler), which a mount uses to log it and queue its
// repair.

// Damage is a copy that a read found damaged or missing, and read around.
type Damage struct {
	Ref      blobstore.Ref
	Volume   int   // the volume of the damaged copy
	ReadFrom int   // the volume whose copy gave the bytes instead
	Err      error // what is wrong with the copy (a *CorruptBlobError, or an I/O error)
}

// WithDamageHandler has the damaged copies that OpenBlobAnyCopy's readers
// read around reported to fn, each once until ForgetDamage. fn is called
// from the read that met the damage: it must not block.
func WithDamageHandler(fn func(Damage)) Option {
	return func(c *Controller) { c.damage.handler = fn }
}

// damageReports reports each damaged copy once.
type damageReports struct {
	handler func(Damage)
	mu      sync.Mutex
	seen    map[copyID]bool
}

type copyID struct {
	ref    blobstore.Ref
	volume int
}

func (c *Controller) reportDamage(d Damage) {
	r := &c.damage
	if r.handler == nil {
		return
	}
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[copyID]bool{}
	}
	id := copyID{d.Ref, d.Volume}
	seen := r.seen[id]
	r.seen[id] = true
	r.mu.Unlock()
	if !seen {
		r.handler(d)
	}
}

// ForgetDamage lets the damage of ref's copy on volumeId be reported
// again (it was repaired).
func (c *Controller) ForgetDamage(ref blobstore.Ref, volumeId int) {
	c.damage.mu.Lock()
	defer c.damage.mu.Unlock()
	delete(c.damage.seen, copyID{ref, volumeId})
}

// isCopyDamage reports whether err says a copy cannot be read (damaged,
// missing, or an I/O error of its volume), as opposed to the blob being
// unknown there or its key missing.
func isCopyDamage(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, syscall.EIO)
}

// OpenBlobAnyCopy opens blob ref for reads at any offset, as OpenBlob
// does, preferring its copy on volumeId, and reads around damage: if that
// copy cannot be opened (missing, cut, a damaged header, index or footer)
// another volume's copy is opened instead, and a frame that fails on the
// copy being read is read from the others. Only when no mounted copy gives
// a frame is the read an error: the first copy's. A blob that volumeId
// does not hold (it was never copied there) is read from a mounted volume
// that does, and is no damage.
func (c *Controller) OpenBlobAnyCopy(ctx context.Context, ref blobstore.Ref, keys KeyRing, volumeId int) (*BlobReader, error) {
	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, keys)
	if err != nil {
		return nil, err
	}
	blob, err := c.openBlob(ctx, meta, volumeId)
	var notThere *NotOnVolumeError
	missing := errors.As(err, &notThere) // the volume never held it: read another, nothing to repair
	if err != nil && !missing && !isCopyDamage(err) {
		return nil, err
	}
	var others []int
	for _, v := range meta.Volumes {
		if _, notMounted := c.driver(v); v != volumeId && notMounted == nil {
			others = append(others, v)
		}
	}
	if blob == nil {
		for i, v := range others {
			if blob, _ = c.openBlob(ctx, meta, v); blob != nil {
				if !missing {
					c.reportDamage(Damage{Ref: ref, Volume: volumeId, ReadFrom: v, Err: err})
				}
				others = slices.Delete(others, i, i+1)
				break
			}
		}
		if blob == nil {
			return nil, err
		}
	}
	if len(others) > 0 {
		blob.around = &otherCopies{c: c, ctx: context.WithoutCancel(ctx), meta: meta, volumes: others,
			readers: map[int]*BlobReader{}}
	}
	return blob, nil
}

// otherCopies are the copies of a blob on the volumes its reader does not
// read, opened when a frame first needs them (without a frame cache: the
// frame they give is cached as the reader's).
type otherCopies struct {
	c       *Controller
	ctx     context.Context
	meta    *BlobMeta
	volumes []int

	mu      sync.Mutex
	readers map[int]*BlobReader // nil: the copy could not be opened
	closed  bool
}

// frame returns frame i of blob b, which failed with cause, read from
// another copy; cause if none gives it.
func (o *otherCopies) frame(b *BlobReader, i int, cause error) ([]byte, error) {
	if errors.Is(cause, ErrKeyNotAvailable) || errors.Is(cause, context.Canceled) {
		return nil, cause // no other copy helps
	}
	plain := make([]byte, b.layout.framePlainSize(i))
	start := int64(i) << b.layout.frameShift
	for _, v := range o.volumes {
		other := o.reader(v)
		if other == nil {
			continue
		}
		if n, _ := other.ReadAt(plain, start); n != len(plain) {
			continue
		}
		if isCopyDamage(cause) { // not an unreachable volume: that is no repair's business
			o.c.reportDamage(Damage{Ref: b.ref, Volume: b.volume, ReadFrom: v, Err: cause})
		}
		return plain, nil
	}
	return nil, cause
}

// reader returns the reader of the copy on volume v, opening it the first
// time; nil if it cannot be opened.
func (o *otherCopies) reader(v int) *BlobReader {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, opened := o.readers[v]
	if opened || o.closed {
		return r
	}
	driver, err := o.c.driver(v)
	if err == nil {
		r, err = o.c.openCopy(o.ctx, o.meta, driver, v)
	}
	if err != nil {
		r = nil
	}
	o.readers[v] = r
	return r
}

func (o *otherCopies) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.readers {
		if r != nil {
			r.Close()
		}
	}
	clear(o.readers)
	o.closed = true
}
