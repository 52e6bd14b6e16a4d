package diskaccess

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// BlobReader reads a blob's plaintext at any offset. A read opens only the
// frames it touches, and returns no byte of a frame that fails to
// authenticate: it returns the bytes of the good frames before it and a
// *CorruptBlobError naming the bad one. ReadAt may be called from many
// goroutines at once; they share no lock.
type BlobReader struct {
	ref    blobstore.Ref
	volume int
	src    blobstore.RawReaderAt
	layout *layout
	aead   cipher.AEAD
	cache  *FrameCache // nil: no cache
	// readAhead is how many frames a Stream opens ahead.
	readAhead int
	// rawStream, if set, streams the stored blob from its start in one
	// request: Stream reads a remote blob that way (see OpenBlob).
	rawStream func() (io.ReadCloser, error)
	// around, if set, reads a frame that fails here from other copies
	// (OpenBlobAnyCopy).
	around *otherCopies

	prefetching sync.WaitGroup // Prefetch goroutines, waited for by Close
}

var _ io.ReaderAt = (*BlobReader)(nil)

func openBlobReader(ref blobstore.Ref, volume int, src blobstore.RawReaderAt, dataKey []byte) (*BlobReader, error) {
	l, err := parseLayout(src, src.Size())
	if err != nil {
		return nil, asCorrupt(err, ref, volume)
	}
	aead, err := newFrameAEAD(dataKey, l.header)
	if err != nil {
		return nil, err
	}
	return &BlobReader{ref: ref, volume: volume, src: src, layout: l, aead: aead, readAhead: readAhead}, nil
}

// Size returns the plaintext size.
func (b *BlobReader) Size() int64 { return b.layout.plainSize }

// Ref returns the blob's ref.
func (b *BlobReader) Ref() blobstore.Ref { return b.ref }

// Close waits for prefetches and releases the stored blob.
func (b *BlobReader) Close() error {
	b.prefetching.Wait()
	if b.around != nil {
		b.around.close()
	}
	return b.src.Close()
}

// ReadAt implements io.ReaderAt over the plaintext.
func (b *BlobReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("diskaccess: negative offset %d", off)
	}
	bufs := getFrameBuffers(b.layout.frameShift)
	defer putFrameBuffers(b.layout.frameShift, bufs)
	n := 0
	for n < len(p) && off < b.layout.plainSize {
		frame := int(off >> b.layout.frameShift)
		plain, err := b.cachedFrame(frame, bufs)
		if err != nil {
			return n, err
		}
		copied := copy(p[n:], plain[off-int64(frame)<<b.layout.frameShift:])
		n += copied
		off += int64(copied)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// cachedFrame returns frame i's plaintext from the cache, or opens it and
// caches it. bufs are used only without a cache.
func (b *BlobReader) cachedFrame(i int, bufs *frameBuffers) ([]byte, error) {
	if b.cache == nil {
		return b.openFrame(i, bufs)
	}
	return b.cache.getOrLoad(frameKey{ref: b.ref, frame: i}, func() ([]byte, error) {
		// Opened into buffers of its own, which the cache then keeps: no
		// copy.
		return b.openFrame(i, b.ownedBuffers(i))
	})
}

// ownedBuffers are buffers for opening frame i once and keeping its
// plaintext: the sealed bytes are opened in place.
func (b *BlobReader) ownedBuffers(i int) *frameBuffers {
	entry := b.layout.frames[i]
	bufs := &frameBuffers{sealed: make([]byte, entry.storedLen)}
	if entry.flags&flagLZ4 != 0 {
		bufs.plain = make([]byte, b.layout.framePlainSize(i))
	}
	return bufs
}

// Prefetch starts opening, in the background, the frames that hold
// plaintext bytes [off, off+length) and are neither cached nor being
// opened, so that the reads that come next find them in the frame cache.
// It returns at once; without a frame cache it does nothing.
func (b *BlobReader) Prefetch(off, length int64) {
	if b.cache == nil || off >= b.layout.plainSize || length <= 0 {
		return
	}
	first := int(off >> b.layout.frameShift)
	last := int(min(off+length, b.layout.plainSize)-1) >> b.layout.frameShift
	for i := first; i <= last; i++ {
		if b.cache.has(frameKey{ref: b.ref, frame: i}) {
			continue
		}
		b.prefetching.Add(1)
		go func() {
			defer b.prefetching.Done()
			b.cachedFrame(i, nil) // an error is met again by the read that needs it
		}()
	}
}

// openFrame reads, authenticates and (if compressed) decompresses frame i,
// and returns its plaintext, which lives in bufs (or, read from another
// copy, in a buffer of its own).
func (b *BlobReader) openFrame(i int, bufs *frameBuffers) ([]byte, error) {
	plain, err := b.openOwnFrame(i, bufs)
	return b.orAround(i, plain, err)
}

// orAround is plain, or frame i read from another copy if err says this
// copy failed to give it.
func (b *BlobReader) orAround(i int, plain []byte, err error) ([]byte, error) {
	if err == nil || b.around == nil {
		return plain, err
	}
	return b.around.frame(b, i, err)
}

// openOwnFrame is openFrame from this copy alone.
func (b *BlobReader) openOwnFrame(i int, bufs *frameBuffers) ([]byte, error) {
	entry := b.layout.frames[i]
	sealed := bufs.sealed[:entry.storedLen]
	if err := readFull(b.src, sealed, entry.offset); err != nil {
		return nil, fmt.Errorf("diskaccess: reading frame %d of %s: %w", i, b.ref, err)
	}
	return b.openSealed(i, sealed, bufs)
}

// openSealed authenticates and decompresses frame i, whose stored bytes
// are in sealed (which it overwrites), and returns its plaintext.
func (b *BlobReader) openSealed(i int, sealed []byte, bufs *frameBuffers) ([]byte, error) {
	entry := b.layout.frames[i]
	last := i == len(b.layout.frames)-1
	nonce := frameNonce(int64(i), last)
	aad := frameAAD(b.ref, entry.flags)
	payload, err := b.aead.Open(sealed[:0], nonce[:], sealed, aad[:])
	if err != nil {
		return nil, b.frameError(i, entry, sealed)
	}
	if entry.flags&flagLZ4 == 0 {
		return payload, nil
	}
	want := b.layout.framePlainSize(i)
	plain := bufs.plain[:want]
	n, err := lz4.UncompressBlock(payload, plain)
	if err != nil || int64(n) != want {
		// Authentic but undecodable: only a key holder could have written it.
		return nil, &CorruptBlobError{Ref: b.ref, Volume: b.volume, Region: RegionFrame, Frame: i,
			Err: fmt.Errorf("authentic frame does not decompress to %d bytes (got %d, %v)", want, n, err)}
	}
	return plain, nil
}

// frameError explains why frame i failed to open. The sealed bytes were
// overwritten by the failed Open, so they are read again for the checksum.
func (b *BlobReader) frameError(i int, entry frameEntry, buf []byte) error {
	cause := errors.New("fails authentication, though it matches its checksum: another blob's bytes, sealed with another key, or forged")
	if err := readFull(b.src, buf, entry.offset); err == nil && crc32.Checksum(buf, castagnoli) != entry.crc {
		cause = errors.New("fails authentication: stored bytes do not match their checksum (damaged on disk)")
	}
	return &CorruptBlobError{Ref: b.ref, Volume: b.volume, Region: RegionFrame, Frame: i, Err: cause}
}

// frameBuffers are the scratch space to open one frame.
type frameBuffers struct {
	sealed []byte // frameSize + tagSize
	plain  []byte // frameSize
}

var frameBufferPools [maxFrameShift + 1]sync.Pool

func getFrameBuffers(shift uint8) *frameBuffers {
	if bufs, ok := frameBufferPools[shift].Get().(*frameBuffers); ok {
		return bufs
	}
	size := 1 << shift
	return &frameBuffers{sealed: make([]byte, size+tagSize), plain: make([]byte, size)}
}

func putFrameBuffers(shift uint8, bufs *frameBuffers) {
	frameBufferPools[shift].Put(bufs)
}

// readAhead is how many frames a sequential Fetch opens ahead of its
// reader, on other cores: with 128 KiB frames, 4 frames hold about 1 MiB
// of buffers per open Fetch. A volume whose Properties ask for a deeper
// read-ahead (a network volume, to hide its latency) gets what it asks.
const readAhead = 4

// fetchReader reads a blob from start to end. It opens up to readAhead
// frames ahead, each in its own goroutine, and hands them out in order, so
// that reading from disk and opening frames overlap with the caller's work.
type fetchReader struct {
	blob      *BlobReader
	scheduled int            // frames started so far
	queue     []*openedFrame // started frames, in order
	current   []byte         // rest of the head frame's plaintext
	skip      int64          // bytes of the first frame before the start
	raw       io.ReadCloser  // the stored bytes in order, when streamed
	err       error
}

// openedFrame is one frame being opened in the background; plain and err
// are set before done is closed.
type openedFrame struct {
	bufs  *frameBuffers
	plain []byte
	err   error
	done  chan struct{}
}

func newFetchReader(blob *BlobReader) *fetchReader {
	return &fetchReader{blob: blob}
}

// Stream returns a reader of the plaintext from offset off to the end that
// opens frames ahead on other cores, as Fetch does; it suits one pass over
// the bytes (ReadAt in small pieces would open each frame many times).
// Closing it closes the BlobReader.
func (b *BlobReader) Stream(off int64) io.ReadCloser {
	r := newFetchReader(b)
	off = min(max(off, 0), b.layout.plainSize)
	r.scheduled = int(off >> b.layout.frameShift)
	r.skip = off - int64(r.scheduled)<<b.layout.frameShift
	if off == b.layout.plainSize && off > 0 {
		r.scheduled = len(b.layout.frames) // nothing left
	}
	if b.rawStream != nil && r.scheduled < len(b.layout.frames) {
		r.err = r.streamRaw()
	}
	return r
}

// streamRaw reads the stored bytes through one streaming request from the
// first frame wanted on: one GET instead of one per frame.
func (r *fetchReader) streamRaw() error {
	raw, err := r.blob.rawStream()
	if err != nil {
		return err
	}
	if _, err := io.CopyN(io.Discard, raw, r.blob.layout.frames[r.scheduled].offset); err != nil {
		raw.Close()
		return fmt.Errorf("diskaccess: reading blob %s: %w", r.blob.ref, err)
	}
	r.raw = raw
	return nil
}

func (r *fetchReader) Read(p []byte) (int, error) {
	for len(r.current) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.advance(); err != nil {
			r.err = err
		}
	}
	n := copy(p, r.current)
	r.current = r.current[n:]
	return n, nil
}

// advance retires the head frame and makes the next one current, starting
// frames ahead as it goes. It returns io.EOF after the last frame.
func (r *fetchReader) advance() error {
	shift := r.blob.layout.frameShift
	if len(r.queue) > 0 && r.queue[0].err == nil {
		putFrameBuffers(shift, r.queue[0].bufs)
		r.queue = r.queue[1:]
	}
	for len(r.queue) < r.blob.readAhead && r.scheduled < len(r.blob.layout.frames) {
		r.queue = append(r.queue, r.start(r.scheduled))
		r.scheduled++
	}
	if len(r.queue) == 0 {
		return io.EOF
	}
	head := r.queue[0]
	<-head.done
	if head.err != nil {
		return head.err
	}
	r.current = head.plain[min(r.skip, int64(len(head.plain))):]
	r.skip = 0
	return nil
}

func (r *fetchReader) start(frame int) *openedFrame {
	f := &openedFrame{bufs: getFrameBuffers(r.blob.layout.frameShift), done: make(chan struct{})}
	if r.raw == nil {
		go func() {
			defer close(f.done)
			f.plain, f.err = r.blob.openFrame(frame, f.bufs)
		}()
		return f
	}
	// Streamed: the stored bytes come in order, here; opening them goes on
	// another core.
	sealed := f.bufs.sealed[:r.blob.layout.frames[frame].storedLen]
	if _, err := io.ReadFull(r.raw, sealed); err != nil {
		f.plain, f.err = r.blob.orAround(frame, nil, fmt.Errorf("diskaccess: reading frame %d of %s: %w", frame, r.blob.ref, err))
		close(f.done)
		return f
	}
	go func() {
		defer close(f.done)
		plain, err := r.blob.openSealed(frame, sealed, f.bufs)
		f.plain, f.err = r.blob.orAround(frame, plain, err)
	}()
	return f
}

// Close waits for the frames still being opened, so that no goroutine
// reads the blob after it is closed.
func (r *fetchReader) Close() error {
	for _, f := range r.queue {
		<-f.done
		putFrameBuffers(r.blob.layout.frameShift, f.bufs)
	}
	r.queue, r.current = nil, nil
	if r.err == nil {
		r.err = errors.New("diskaccess: read after Close")
	}
	if r.raw != nil {
		r.raw.Close()
	}
	return r.blob.Close()
}
