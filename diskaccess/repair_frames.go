package diskaccess

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/stofuse/stofuse/blobstore"
)

// ErrNoGoodFrame: RepairFromFrames found a frame damaged in every copy,
// so no whole copy can be made; nothing was written.
var ErrNoGoodFrame = errors.New("a frame is damaged in every copy")

// RepairFromFrames replaces the damaged copy of blob ref on toVolumeId
// with one assembled frame by frame from the copies on every volume that
// holds it, itself included: copies are raw copies of one another, so each
// frame comes from the first copy whose stored bytes match the frame's
// CRC-32C in the index, and the header, index and footer from a copy whose
// layout checks out. It is for a blob no copy of which is whole (damaged
// in different frames); the result is checked against the metadata's size
// and CRC-32C as it is stored, so a frame damaged everywhere (ErrNoGoodFrame)
// or anything else amiss stores nothing. No key is needed. A copy that
// verifies is left alone (ErrCopyIntact). The new copy is durable before
// it returns nil.
func (c *Controller) RepairFromFrames(ctx context.Context, toVolumeId int, ref blobstore.Ref) error {
	unlock := c.refLocks.lock(ref)
	defer unlock()
	meta, target, err := c.blobOnVolume(ctx, ref, nil, toVolumeId)
	if err != nil {
		return err
	}
	if _, err := c.checkStored(ctx, meta, target, toVolumeId, nil); err == nil {
		return ErrCopyIntact
	} else if !errors.Is(err, ErrCorrupt) {
		return err
	}
	var sources []blobstore.RawReaderAt
	var layout *layout
	defer func() {
		for _, src := range sources {
			src.Close()
		}
	}()
	for _, v := range meta.Volumes {
		driver, err := c.driver(v)
		if err != nil {
			continue
		}
		src, err := rawOpen(ctx, driver, ref, v)
		if err != nil {
			continue
		}
		if src.Size() != meta.SizeOnDisk {
			src.Close()
			continue
		}
		if layout == nil {
			if l, err := parseLayout(src, src.Size()); err == nil {
				layout = l
				sources = slices.Insert(sources, 0, src) // the trailer's source first
				continue
			}
		}
		sources = append(sources, src)
	}
	if layout == nil {
		return fmt.Errorf("blob %s: no copy of the right size with a whole header, index and footer: %w", ref, ErrNoGoodFrame)
	}
	merged := &frameMerger{ref: ref, layout: layout, sources: sources}
	err = target.RawStore(ctx, ref, newCRCReader(limited(ctx, merged), meta.ExpectedCrc32, meta.SizeOnDisk))
	if merged.err != nil {
		return merged.err
	}
	if err != nil {
		return fmt.Errorf("storing blob %s assembled from its copies' frames on volume %d: %w", ref, toVolumeId, err)
	}
	if blobstore.SyncDeferred(ctx) {
		if err := target.Sync(ctx); err != nil {
			return err
		}
	}
	return c.metadataStore.WriteBlobReplicated(ctx, ref, toVolumeId)
}

// frameMerger reads a blob's stored bytes in order, each frame from the
// first source whose bytes match its checksum, the rest from the first
// source (whose layout was parsed).
type frameMerger struct {
	ref     blobstore.Ref
	layout  *layout
	sources []blobstore.RawReaderAt
	off     int64
	pending []byte
	err     error // a frame no source has whole
}

func (m *frameMerger) Read(p []byte) (int, error) {
	for len(m.pending) == 0 {
		if m.off >= m.layout.storedSize {
			return 0, io.EOF
		}
		if err := m.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, m.pending)
	m.pending = m.pending[n:]
	m.off += int64(n)
	return n, nil
}

// next loads the region that starts at m.off: a frame, or the bytes up to
// the next frame (or to the end).
func (m *frameMerger) next() error {
	frames := m.layout.frames
	i, found := slices.BinarySearchFunc(frames, m.off, func(f frameEntry, off int64) int {
		switch {
		case f.offset < off:
			return -1
		case f.offset > off:
			return 1
		}
		return 0
	})
	if found {
		f := frames[i]
		buf := make([]byte, f.storedLen)
		for _, src := range m.sources {
			if readFull(src, buf, f.offset) == nil && crc32.Checksum(buf, castagnoli) == f.crc {
				m.pending = buf
				return nil
			}
		}
		m.err = fmt.Errorf("blob %s, frame %d: %w", m.ref, i, ErrNoGoodFrame)
		return m.err
	}
	end := m.layout.storedSize
	if i < len(frames) {
		end = frames[i].offset
	}
	buf := make([]byte, end-m.off)
	if err := readFull(m.sources[0], buf, m.off); err != nil {
		m.err = err
		return err
	}
	m.pending = buf
	return nil
}
