package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore/s3"
	"github.com/stofuse/stofuse/blobstore/s3/s3test"
)

// The tests run against a real S3 server, Versity Gateway over a temporary
// directory, started on 127.0.0.1 by package s3test. test/run.sh installs
// it; without it the tests skip, except under CI=true, where they fail.
const testBucket = "stofuse-test"

// testServer adds what these tests need to an s3test.Server.
type testServer struct {
	*s3test.Server
}

var (
	sharedOnce   sync.Once
	sharedServer *s3test.Server
	sharedDir    string
	sharedErr    error
	prefixCount  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedServer != nil {
		sharedServer.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// server returns the server shared by the tests that do not stop it, with
// the test bucket.
func server(t testing.TB) testServer {
	t.Helper()
	binary := s3test.Binary(t)
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "stofuse-s3-test-")
		if sharedErr != nil {
			return
		}
		sharedServer, sharedErr = s3test.Launch(binary, sharedDir)
		if sharedErr == nil {
			sharedErr = sharedServer.MakeBucket(testBucket)
		}
	})
	if sharedErr != nil {
		t.Fatalf("starting versitygw: %v", sharedErr)
	}
	return testServer{sharedServer}
}

// ownServer starts a server with the test bucket that only this test uses,
// stopped at its end.
func ownServer(t *testing.T) testServer {
	t.Helper()
	srv := s3test.Start(t)
	if err := srv.MakeBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	return testServer{srv}
}

// freeAddr returns an address of 127.0.0.1 where nothing listens.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// config returns a Config for a fresh, empty volume on srv: its own prefix
// in the test bucket. Retries are quick so that fault tests stay short.
func (srv testServer) config() s3.Config {
	return s3.Config{
		Endpoint:  srv.Endpoint(),
		Bucket:    testBucket,
		Prefix:    fmt.Sprintf("vol%d/", prefixCount.Add(1)),
		Region:    "us-east-1",
		AccessKey: srv.AccessKey(),
		SecretKey: srv.SecretKey(),
		PartSize:  s3.MinPartSize,
		Retry:     s3.RetryPolicy{MaxAttempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
	}
}

func open(t testing.TB, cfg s3.Config) *s3.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	return store
}

// keys lists every object key under prefix, straight from the server.
func (srv testServer) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	for object := range srv.Client().ListObjects(context.Background(), testBucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if object.Err != nil {
			t.Fatalf("listing %s: %v", prefix, object.Err)
		}
		keys = append(keys, object.Key)
	}
	return keys
}

// uploads lists the multipart uploads in progress under prefix.
func (srv testServer) uploads(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	for upload := range srv.Client().ListIncompleteUploads(context.Background(), testBucket, prefix, true) {
		if upload.Err != nil {
			t.Fatalf("listing uploads under %s: %v", prefix, upload.Err)
		}
		keys = append(keys, upload.Key+" "+upload.UploadID)
	}
	return keys
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

var errInjected = errors.New("injected reader failure")

// failingReader returns content and then fails: either on a read after the
// last byte (atEOF false), or together with the last bytes (atEOF true),
// as a reader that verifies a checksum when it reaches the end does. A
// later Read returns io.EOF, so a client that drops the first error would
// see a clean end.
type failingReader struct {
	r      *bytes.Reader
	atEOF  bool
	failed bool
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.failed {
		return 0, io.EOF
	}
	n, _ := f.r.Read(p)
	if f.r.Len() > 0 {
		return n, nil
	}
	if f.atEOF || n == 0 {
		f.failed = true
		return n, errInjected
	}
	return n, nil
}
