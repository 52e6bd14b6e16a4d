package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/s3"
	"github.com/stofuse/stofuse/blobstore/storagetest"
)

func TestConformance(t *testing.T) {
	srv := server(t)
	storagetest.Run(t, func(t *testing.T) blobstore.Driver { return open(t, srv.config()) })
}

func TestLayoutAndRoutingCost(t *testing.T) {
	srv := server(t)
	cfg := srv.config()
	store := open(t, cfg)
	if store.RoutingCost() != 100 {
		t.Fatalf("RoutingCost() = %d, want 100", store.RoutingCost())
	}
	if p := store.Properties(); !p.Remote || !p.PreferStream {
		t.Fatalf("Properties() = %+v, want a remote volume that prefers streams", p)
	}
	ref := blobstore.RefOf([]byte("layout"))
	var zero blobstore.Ref // where old volumes keep their descriptor
	for _, r := range []blobstore.Ref{ref, zero} {
		if err := store.RawStore(context.Background(), r, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"volume", "keys/default"} {
		if err := store.PutObject(context.Background(), name, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		cfg.Prefix + "000/" + strings.Repeat("0", 64),
		cfg.Prefix + ref.String()[:3] + "/" + ref.String(),
		cfg.Prefix + "objects/keys+default",
		cfg.Prefix + "objects/volume",
	}
	if got := srv.keys(t, cfg.Prefix); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

func TestListSkipsStrays(t *testing.T) {
	srv := server(t)
	cfg := srv.config()
	store := open(t, cfg)
	ref := blobstore.RefOf([]byte("a"))
	if err := store.RawStore(context.Background(), ref, strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	hex := ref.String()
	for _, stray := range []string{"README", hex[:3] + "/" + strings.ToUpper(hex), "abc/" + hex, "hold/" + hex + ".1",
		"objects/" + hex, "objects/" + hex[:3] + "+" + hex} {
		put(t, srv, cfg.Prefix+stray, "stray")
	}
	put(t, srv, strings.TrimSuffix(cfg.Prefix, "/")+"0/"+hex[:3]+"/"+hex, "another volume's prefix")
	var listed []blobstore.Ref
	err := store.List(context.Background(), func(info blobstore.BlobInfo) error {
		listed = append(listed, info.Ref)
		return nil
	})
	if err != nil || len(listed) != 1 || listed[0] != ref {
		t.Fatalf("List = %v, %v; want only %s", listed, err, ref)
	}
}

func put(t *testing.T, srv testServer, key, content string) {
	t.Helper()
	_, err := srv.Client().PutObject(context.Background(), testBucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("putting %s: %v", key, err)
	}
}

// TestFailingReaderStoresNothing: a reader that fails mid-way or together
// with its last bytes, for a blob of one part, of exactly one or two parts
// (where io.ReadFull would drop an error that comes with a full buffer),
// and of several parts, leaves no object, no upload, and the old blob.
func TestFailingReaderStoresNothing(t *testing.T) {
	srv := server(t)
	sizes := map[string]int{
		"small":          100_000,
		"one full part":  s3.MinPartSize,
		"two full parts": 2 * s3.MinPartSize,
		"multipart":      2*s3.MinPartSize + 12345,
	}
	for name, size := range sizes {
		for _, atEOF := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/atEOF=%v", name, atEOF), func(t *testing.T) {
				cfg := srv.config()
				store := open(t, cfg)
				ctx := context.Background()
				fresh, replaced := blobstore.RefOf([]byte("fresh")), blobstore.RefOf([]byte("replaced"))
				if err := store.RawStore(ctx, replaced, strings.NewReader("old")); err != nil {
					t.Fatal(err)
				}
				for _, ref := range []blobstore.Ref{fresh, replaced} {
					content := &failingReader{r: bytes.NewReader(randomBytes(size, 1)), atEOF: atEOF}
					if err := store.RawStore(ctx, ref, content); !errors.Is(err, errInjected) {
						t.Fatalf("RawStore = %v, want the reader's error", err)
					}
				}
				if _, err := store.Stat(ctx, fresh); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("Stat after a failed store = %v, want not exist", err)
				}
				if got := fetchAll(t, store, replaced); string(got) != "old" {
					t.Fatalf("after a failed replace the blob holds %d bytes, want the old 3", len(got))
				}
				if keys := srv.keys(t, cfg.Prefix); len(keys) != 1 {
					t.Fatalf("objects after failed stores: %v, want only the old blob", keys)
				}
				if uploads := srv.uploads(t, cfg.Prefix); len(uploads) != 0 {
					t.Fatalf("failed stores left multipart uploads: %v", uploads)
				}
			})
		}
	}
}

func fetchAll(t *testing.T, store *s3.Store, ref blobstore.Ref) []byte {
	t.Helper()
	rc, err := store.RawFetch(context.Background(), ref)
	if err != nil {
		t.Fatalf("RawFetch: %v", err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return got
}

// TestCancelMidUpload cancels the context after the first part went up.
func TestCancelMidUpload(t *testing.T) {
	srv := server(t)
	cfg := srv.config()
	store := open(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	content := &hookReader{r: bytes.NewReader(randomBytes(3*s3.MinPartSize, 2)), at: s3.MinPartSize + 1, hook: cancel}
	ref := blobstore.RefOf([]byte("cancelled"))
	if err := store.RawStore(ctx, ref, content); !errors.Is(err, context.Canceled) {
		t.Fatalf("RawStore = %v, want context.Canceled", err)
	}
	if keys, uploads := srv.keys(t, cfg.Prefix), srv.uploads(t, cfg.Prefix); len(keys)+len(uploads) != 0 {
		t.Fatalf("a cancelled store left objects %v and uploads %v", keys, uploads)
	}
}

// hookReader calls hook once, when the byte at offset at is about to be
// read.
type hookReader struct {
	r    io.Reader
	at   int64
	read int64
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.hook != nil && h.read+int64(len(p)) > h.at {
		if h.read < h.at {
			p = p[:h.at-h.read] // stop just before the hook's byte
		} else {
			h.hook()
			h.hook = nil
		}
	}
	n, err := h.r.Read(p)
	h.read += int64(n)
	return n, err
}

func TestMultipartRoundTrip(t *testing.T) {
	srv := server(t)
	store := open(t, srv.config())
	content := randomBytes(2*s3.MinPartSize+1, 3)
	ref := blobstore.RefOf([]byte("multipart"))
	if err := store.RawStore(context.Background(), ref, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	if got := fetchAll(t, store, ref); !bytes.Equal(got, content) {
		t.Fatalf("fetched %d bytes that differ from the %d stored", len(got), len(content))
	}
}

func TestSweepRemovesStaleUploadsAndHolds(t *testing.T) {
	srv := server(t)
	cfg := srv.config()
	ctx := context.Background()
	core := minio.Core{Client: srv.Client()}
	ref := blobstore.RefOf([]byte("sweep"))
	key := cfg.Prefix + ref.String()[:3] + "/" + ref.String()
	if _, err := core.NewMultipartUpload(ctx, testBucket, key, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	put(t, srv, cfg.Prefix+"hold/"+ref.String()+".dead", "left by a crashed process")
	store := open(t, cfg)
	if err := store.RawStore(ctx, ref, strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	if removed, err := store.Sweep(ctx); err != nil || removed != 0 {
		t.Fatalf("Sweep of fresh leftovers = %d, %v; want 0, nil", removed, err)
	}

	time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
	cfg.StaleAfter = time.Second
	store = open(t, cfg)
	if removed, err := store.Sweep(ctx); err != nil || removed != 2 {
		t.Fatalf("Sweep = %d, %v; want 2, nil", removed, err)
	}
	if uploads := srv.uploads(t, cfg.Prefix); len(uploads) != 0 {
		t.Fatalf("uploads left after Sweep: %v", uploads)
	}
	if keys := srv.keys(t, cfg.Prefix); len(keys) != 1 || keys[0] != key {
		t.Fatalf("objects after Sweep: %v, want only the blob %s", keys, key)
	}
}
