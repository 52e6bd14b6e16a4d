package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/memory"
)

// flakyDriver fails the first read of each RawFetch stream once.
type flakyDriver struct {
	*memory.Store
	fails int
}

type flakyReader struct {
	io.ReadCloser
	d *flakyDriver
}

func (r *flakyReader) Read(p []byte) (int, error) {
	if r.d.fails > 0 {
		r.d.fails--
		return 0, errors.New("transient")
	}
	return r.ReadCloser.Read(p)
}

func (d *flakyDriver) RawFetch(ctx context.Context, ref blobstore.Ref) (io.ReadCloser, error) {
	rc, err := d.Store.RawFetch(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &flakyReader{rc, d}, nil
}

// TestSequentialReaderAtRecovers: after a failed read, the next ReadAt
// starts from a fresh stream at the right offset, not where the failed one
// stopped.
func TestSequentialReaderAtRecovers(t *testing.T) {
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	store := memory.New(1)
	ref := blobstore.RefOf(content)
	store.RawStore(context.Background(), ref, bytes.NewReader(content))
	d := &flakyDriver{Store: store}
	r, err := blobstore.SequentialReaderAt(context.Background(), d, ref)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	r.ReadAt(buf, 2) // opens the stream
	d.fails = 1
	if _, err := r.ReadAt(buf, 10); err == nil {
		t.Fatal("the injected failure did not happen")
	}
	if n, err := r.ReadAt(buf, 20); err != nil || string(buf[:n]) != "klmn" {
		t.Fatalf("ReadAt(20) after a failure = %q, %v; want %q", buf[:n], err, "klmn")
	}
}
