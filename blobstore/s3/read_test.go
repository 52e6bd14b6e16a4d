package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/s3"
)

// countingTransport counts the response body bytes of GET requests.
type countingTransport struct {
	base     http.RoundTripper
	getBytes atomic.Int64
	gets     atomic.Int64
}

func newCountingTransport() *countingTransport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DisableCompression = true // count bytes as they come off the wire
	return &countingTransport{base: base}
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && req.URL.Query().Get("list-type") == "" {
		c.gets.Add(1)
		resp.Body = &countingBody{ReadCloser: resp.Body, count: &c.getBytes}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	count *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.count.Add(int64(n))
	return n, err
}

// TestReadAtFetchesOnlyTheBytesAsked counts the bytes that come over the
// network: a ReadAt of 10 bytes receives 10 bytes, not the whole object.
func TestReadAtFetchesOnlyTheBytesAsked(t *testing.T) {
	srv := server(t)
	counter := newCountingTransport()
	cfg := srv.config()
	cfg.Transport = counter
	store := open(t, cfg)
	ctx := context.Background()
	content := randomBytes(2*s3.MinPartSize+999, 4) // multipart: ranges cross part boundaries
	ref := blobstore.RefOf([]byte("ranged"))
	if err := store.RawStore(ctx, ref, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	counter.getBytes.Store(0)
	r, err := store.RawOpen(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := counter.getBytes.Load(); got != 0 {
		t.Fatalf("RawOpen received %d body bytes, want 0 (a HEAD)", got)
	}
	reads := []struct {
		offset int64
		length int
	}{
		{1<<20 + 7, 10},
		{s3.MinPartSize - 50, 100}, // across the first part boundary
		{int64(len(content)) - 100_000, 100_000},
		{0, 1},
	}
	var want int64
	for _, read := range reads {
		buf := make([]byte, read.length)
		n, err := r.ReadAt(buf, read.offset)
		if n != read.length || (err != nil && err != io.EOF) || !bytes.Equal(buf, content[read.offset:read.offset+int64(read.length)]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v or wrong bytes", read.length, read.offset, n, err)
		}
		want += int64(read.length)
		if got := counter.getBytes.Load(); got != want {
			t.Fatalf("after ReadAt(%d bytes at %d) %d bytes were received in all, want %d", read.length, read.offset, got, want)
		}
	}
	// Past the end: only the 5 bytes that exist are asked for.
	n, err := r.ReadAt(make([]byte, 1000), int64(len(content))-5)
	if n != 5 || err != io.EOF || counter.getBytes.Load() != want+5 {
		t.Fatalf("ReadAt across the end = %d, %v after receiving %d bytes; want 5, EOF, %d", n, err, counter.getBytes.Load(), want+5)
	}
	if n, err := r.ReadAt(make([]byte, 10), int64(len(content))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
}

// TestReaderDetectsReplacementByAnotherProcess: a reader whose object is
// replaced or removed behind the store's back fails with ErrObjectChanged
// rather than return bytes of the new object.
func TestReaderDetectsReplacementByAnotherProcess(t *testing.T) {
	srv := server(t)
	cfg := srv.config()
	store := open(t, cfg)
	ctx := context.Background()
	ref := blobstore.RefOf([]byte("replaced behind our back"))
	if err := store.RawStore(ctx, ref, bytes.NewReader(randomBytes(10_000, 5))); err != nil {
		t.Fatal(err)
	}
	r, err := store.RawOpen(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	key := cfg.Prefix + ref.String()[:3] + "/" + ref.String()
	put(t, srv, key, strings.Repeat("n", 10_000))
	if n, err := r.ReadAt(make([]byte, 10), 100); !errors.Is(err, s3.ErrObjectChanged) {
		t.Fatalf("ReadAt of a replaced object = %d, %v; want ErrObjectChanged", n, err)
	}
	if err := srv.Client().RemoveObject(ctx, testBucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.ReadAt(make([]byte, 10), 100); !errors.Is(err, s3.ErrObjectChanged) {
		t.Fatalf("ReadAt of a removed object = %d, %v; want ErrObjectChanged", n, err)
	}
}

// TestReaderKeepsOldBlobAfterReplace: within the process, RawStore over a
// blob that a reader has open keeps that reader on the old bytes, and the
// copy kept for it goes when the reader closes.
func TestReaderKeepsOldBlobAfterReplace(t *testing.T) {
	srv := server(t)
	cfg := srv.config()
	store := open(t, cfg)
	ctx := context.Background()
	ref := blobstore.RefOf([]byte("replaced"))
	old, newer := randomBytes(300_000, 6), randomBytes(300_000, 7)
	if err := store.RawStore(ctx, ref, bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	readers := make([]blobstore.RawReaderAt, 2)
	for i := range readers {
		var err error
		if readers[i], err = store.RawOpen(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.RawStore(ctx, ref, bytes.NewReader(newer)); err != nil {
		t.Fatal(err)
	}
	for _, r := range readers {
		buf := make([]byte, 1000)
		if _, err := r.ReadAt(buf, 5000); err != nil || !bytes.Equal(buf, old[5000:6000]) {
			t.Fatalf("ReadAt after replace: %v or not the old bytes", err)
		}
	}
	if got := fetchAll(t, store, ref); !bytes.Equal(got, newer) {
		t.Fatal("RawFetch after replace does not return the new blob")
	}
	if keys := srv.keys(t, cfg.Prefix+"hold/"); len(keys) != 1 {
		t.Fatalf("hold copies while readers are open: %v, want 1", keys)
	}
	for _, r := range readers {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if keys := srv.keys(t, cfg.Prefix+"hold/"); len(keys) != 0 {
		t.Fatalf("hold copies left after the readers closed: %v", keys)
	}
}
