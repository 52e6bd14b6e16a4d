package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/s3"
	"github.com/stofuse/stofuse/blobstore/s3/s3test"
)

func TestWrongCredentials(t *testing.T) {
	srv := server(t)
	for name, change := range map[string]func(*s3.Config){
		"wrong secret key":   func(c *s3.Config) { c.SecretKey = "wrong-secret-0123456789" },
		"unknown access key": func(c *s3.Config) { c.AccessKey = "nosuchaccesskey" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := srv.config()
			change(&cfg)
			store, err := s3.New(context.Background(), cfg)
			if store != nil || !errors.Is(err, s3.ErrCredentials) {
				t.Fatalf("New with a %s = %v, %v; want ErrCredentials", name, store, err)
			}
			msg := err.Error()
			for _, want := range []string{"credentials", srv.Endpoint(), testBucket, cfg.AccessKey} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			for _, secret := range []string{cfg.SecretKey, s3test.SecretKey} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q shows the secret key", msg)
				}
			}
		})
	}
}

func TestMissingBucket(t *testing.T) {
	srv := server(t)
	cfg := srv.config()
	cfg.Bucket = "no-such-bucket"
	_, err := s3.New(context.Background(), cfg)
	if !errors.Is(err, s3.ErrNoSuchBucket) || !strings.Contains(err.Error(), `"no-such-bucket"`) || !strings.Contains(err.Error(), srv.Endpoint()) {
		t.Fatalf("New with a missing bucket = %v; want ErrNoSuchBucket naming the bucket and endpoint", err)
	}
}

func TestNoServer(t *testing.T) {
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := s3.Config{Endpoint: "http://" + addr, Bucket: testBucket, AccessKey: "k", SecretKey: "s",
		Retry: s3.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}}
	_, err = s3.New(context.Background(), cfg)
	if !errors.Is(err, s3.ErrUnavailable) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("New with no server listening = %v; want ErrUnavailable after 3 attempts", err)
	}
}

// TestServerStoppedMidUpload kills the server while a blob is being read
// from the caller: the store fails after its retries, nothing is visible
// after the server comes back, and storing again then succeeds.
func TestServerStoppedMidUpload(t *testing.T) {
	srv := ownServer(t)
	ctx := context.Background()
	for name, size := range map[string]int{"one part": 1 << 20, "multipart": 3 * s3.MinPartSize} {
		t.Run(name, func(t *testing.T) {
			cfg := srv.config()
			store := open(t, cfg)
			content := randomBytes(size, 8)
			ref := blobstore.RefOf(content)
			// Stop just before the last byte of a one-part blob (its PUT
			// has not started), or in the second part of a multipart one.
			stopAt := int64(size - 1)
			if size > s3.MinPartSize {
				stopAt = s3.MinPartSize + 1000
			}
			reader := &hookReader{r: bytes.NewReader(content), at: stopAt, hook: srv.Stop}
			err := store.RawStore(ctx, ref, reader)
			if !errors.Is(err, s3.ErrUnavailable) || !strings.Contains(err.Error(), srv.Endpoint()) {
				t.Fatalf("RawStore with the server stopped = %v; want ErrUnavailable naming the endpoint", err)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			if _, err := store.Stat(ctx, ref); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Stat after the failed store = %v, want not exist", err)
			}
			if keys := srv.keys(t, cfg.Prefix); len(keys) != 0 {
				t.Fatalf("objects after the failed store: %v", keys)
			}
			if err := store.RawStore(ctx, ref, bytes.NewReader(content)); err != nil {
				t.Fatalf("storing again after the restart: %v", err)
			}
			if got := fetchAll(t, store, ref); !bytes.Equal(got, content) {
				t.Fatal("the blob stored after the restart reads back wrong")
			}
		})
	}
}

// faultProxy sits between the driver and versitygw and answers the next
// failNext requests itself with 503 SlowDown, as a throttling S3 does.
type faultProxy struct {
	server   *httptest.Server
	failNext atomic.Int64
	refused  atomic.Int64
	passed   atomic.Int64
	// cutNextGet, when not zero, makes the next GET's connection break
	// after that many body bytes.
	cutNextGet atomic.Int64
	cuts       atomic.Int64
}

// cutWriter fails once it has passed on remaining bytes; the reverse proxy
// then aborts the response, and the client sees the connection close
// mid-body.
type cutWriter struct {
	http.ResponseWriter
	remaining int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.remaining {
		n, _ := c.ResponseWriter.Write(p[:c.remaining])
		c.remaining = 0
		return n, errors.New("cut by the test")
	}
	c.remaining -= int64(len(p))
	return c.ResponseWriter.Write(p)
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	targetURL, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	// The request keeps its Host header (the proxy's), which is what the
	// client signed.
	proxy := httputil.NewSingleHostReverseProxy(targetURL)
	f := &faultProxy{}
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if f.failNext.Add(-1) >= 0 {
			f.refused.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			if req.Method != http.MethodHead {
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
			}
			return
		}
		f.failNext.Store(0)
		f.passed.Add(1)
		if cut := f.cutNextGet.Swap(0); cut > 0 && req.Method == http.MethodGet {
			f.cuts.Add(1)
			w = &cutWriter{ResponseWriter: w, remaining: cut}
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(f.server.Close)
	return f
}

func (f *faultProxy) fail(n int64) {
	f.refused.Store(0)
	f.failNext.Store(n)
}

// TestThrottledServer: a server that refuses the first requests with 503
// SlowDown is retried until it answers; one that keeps refusing makes the
// operation fail after exactly MaxAttempts tries, with a clear error and
// nothing stored.
func TestThrottledServer(t *testing.T) {
	srv := server(t)
	proxy := newFaultProxy(t, srv.Endpoint())
	cfg := srv.config()
	cfg.Endpoint = proxy.server.URL
	ctx := context.Background()

	proxy.fail(2)
	store := open(t, cfg)
	if proxy.refused.Load() != 2 {
		t.Fatalf("New was refused %d times, want 2", proxy.refused.Load())
	}
	small, large := randomBytes(1000, 9), randomBytes(s3.MinPartSize+1, 10)
	operations := map[string]func() error{
		"RawStore one part":  func() error { return store.RawStore(ctx, blobstore.RefOf(small), bytes.NewReader(small)) },
		"RawStore multipart": func() error { return store.RawStore(ctx, blobstore.RefOf(large), bytes.NewReader(large)) },
		"Stat":               func() error { _, err := store.Stat(ctx, blobstore.RefOf(small)); return err },
		"List":               func() error { return store.List(ctx, func(blobstore.BlobInfo) error { return nil }) },
		"RawFetch": func() error {
			if got := fetchAll(t, store, blobstore.RefOf(large)); !bytes.Equal(got, large) {
				return errors.New("wrong bytes")
			}
			return nil
		},
		"ReadAt": func() error {
			r, err := store.RawOpen(ctx, blobstore.RefOf(large))
			if err != nil {
				return err
			}
			defer r.Close()
			proxy.fail(3)
			buf := make([]byte, 10)
			if _, err := r.ReadAt(buf, 77); err != nil || !bytes.Equal(buf, large[77:87]) {
				return errors.Join(err, errors.New("wrong bytes"))
			}
			return nil
		},
	}
	for _, name := range []string{"RawStore one part", "RawStore multipart", "Stat", "List", "RawFetch", "ReadAt"} {
		proxy.fail(3) // MaxAttempts is 4
		if err := operations[name](); err != nil {
			t.Fatalf("%s with 3 refusals: %v", name, err)
		}
		if proxy.refused.Load() != 3 {
			t.Fatalf("%s: %d requests refused, want 3", name, proxy.refused.Load())
		}
	}

	ref := blobstore.RefOf([]byte("never stored"))
	proxy.fail(1000)
	err := store.RawStore(ctx, ref, strings.NewReader("never stored"))
	proxy.failNext.Store(0)
	if !errors.Is(err, s3.ErrUnavailable) || !strings.Contains(err.Error(), "4 attempts") || !strings.Contains(err.Error(), "SlowDown") {
		t.Fatalf("RawStore against a server that keeps refusing = %v; want ErrUnavailable after 4 attempts naming the cause", err)
	}
	if proxy.refused.Load() != 4 {
		t.Fatalf("%d requests were refused, want exactly 4 (MaxAttempts)", proxy.refused.Load())
	}
	if _, err := store.Stat(ctx, ref); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after the failed store = %v, want not exist", err)
	}
}

// TestBrokenConnectionMidBody: a GET whose connection breaks half-way is
// resumed, for the bytes still missing and only for the version first
// read; a version replaced meanwhile is ErrObjectChanged, never a splice.
func TestBrokenConnectionMidBody(t *testing.T) {
	srv := server(t)
	proxy := newFaultProxy(t, srv.Endpoint())
	cfg := srv.config()
	cfg.Endpoint = proxy.server.URL
	store := open(t, cfg)
	ctx := context.Background()
	content := randomBytes(3<<20, 12)
	ref := blobstore.RefOf(content)
	if err := store.RawStore(ctx, ref, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}

	proxy.cutNextGet.Store(1 << 20)
	if got := fetchAll(t, store, ref); !bytes.Equal(got, content) {
		t.Fatal("RawFetch across a broken connection returned wrong bytes")
	}
	r, err := store.RawOpen(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	proxy.cutNextGet.Store(1000)
	buf := make([]byte, 2<<20)
	if n, err := r.ReadAt(buf, 12345); n != len(buf) || err != nil || !bytes.Equal(buf, content[12345:12345+len(buf)]) {
		t.Fatalf("ReadAt across a broken connection = %d, %v or wrong bytes", n, err)
	}
	if proxy.cuts.Load() != 2 {
		t.Fatalf("%d connections were cut, want 2", proxy.cuts.Load())
	}

	proxy.cutNextGet.Store(1 << 20)
	rc, err := store.RawFetch(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	key := cfg.Prefix + ref.String()[:3] + "/" + ref.String()
	if _, err := srv.Client().PutObject(ctx, testBucket, key, bytes.NewReader(make([]byte, len(content))), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, s3.ErrObjectChanged) {
		t.Fatalf("reading on after the object was replaced: %v; want ErrObjectChanged", err)
	}
}
