package blobstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
)

// Stager is a Driver that can write a blob's bytes before storing them
// under the blob's ref: RawCreate, then Write, then Publish (or Discard).
// It splits RawStore in two, so that a writer can produce a blob without
// holding anything that other writers of the same ref wait for, and take
// that only to Publish. localfs writes a locked temp file and renames it.
type Stager interface {
	Driver

	// RawCreate starts a blob to be stored under ref. Nothing is visible to
	// readers, Stat or List until Publish; a blob stored under ref already
	// is left as it is until then. What a process that dies leaves behind
	// is removed by Sweep.
	RawCreate(ctx context.Context, ref Ref) (StagedBlob, error)
}

// StagedBlob is a blob being written (see Stager). It is not safe for
// concurrent use.
type StagedBlob interface {
	io.Writer

	// Publish stores what was written under the ref as RawStore would:
	// atomically, replacing any blob stored under it, durable at return
	// unless ctx comes from WithDeferredSync (then from the next Sync on).
	// The StagedBlob is finished after Publish, whatever it returns: a
	// failed Publish stores nothing.
	Publish(ctx context.Context) error

	// Discard drops what was written. After Publish, or a second time, it
	// does nothing.
	Discard()
}

// spoolInMemory is how much of a staged blob Stage keeps in memory for a
// driver that is not a Stager; past it the bytes go to a temp file.
const spoolInMemory = 1 << 20

// Stage starts a blob to be stored under ref on d: d's own StagedBlob if d
// is a Stager; otherwise one that spools the bytes (in memory while small,
// then in an unlinked temp file in spoolDir, "" meaning os.TempDir) and
// hands them to RawStore at Publish.
func Stage(ctx context.Context, d Driver, ref Ref, spoolDir string) (StagedBlob, error) {
	if s, ok := d.(Stager); ok {
		return s.RawCreate(ctx, ref)
	}
	return &spooledBlob{driver: d, ref: ref, dir: spoolDir}, nil
}

// spooledBlob is Stage's StagedBlob for a driver that is not a Stager.
type spooledBlob struct {
	driver Driver
	ref    Ref
	dir    string
	mem    bytes.Buffer
	file   *os.File // the bytes once past spoolInMemory; unlinked
	size   int64
	done   bool
}

func (b *spooledBlob) Write(p []byte) (int, error) {
	if b.done {
		return 0, os.ErrClosed
	}
	if b.file == nil && b.size+int64(len(p)) > spoolInMemory {
		f, err := os.CreateTemp(b.dir, "stofuse-stage-*")
		if err != nil {
			return 0, err
		}
		os.Remove(f.Name())
		if _, err := f.Write(b.mem.Bytes()); err != nil {
			f.Close()
			return 0, err
		}
		b.file = f
		b.mem = bytes.Buffer{}
	}
	var n int
	var err error
	if b.file != nil {
		n, err = b.file.Write(p)
	} else {
		n, err = b.mem.Write(p)
	}
	b.size += int64(n)
	return n, err
}

func (b *spooledBlob) Publish(ctx context.Context) error {
	if b.done {
		return os.ErrClosed
	}
	defer b.Discard()
	var content io.Reader = bytes.NewReader(b.mem.Bytes())
	if b.file != nil {
		content = io.NewSectionReader(b.file, 0, b.size)
	}
	counted := &countingReader{r: content}
	if err := b.driver.RawStore(ctx, b.ref, counted); err != nil {
		return err
	}
	if counted.n != b.size {
		return fmt.Errorf("blobstore: the driver stored blob %s after reading %d of its %d bytes", b.ref, counted.n, b.size)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (b *spooledBlob) Discard() {
	if b.done {
		return
	}
	b.done = true
	b.mem = bytes.Buffer{}
	if b.file != nil {
		b.file.Close()
	}
}
