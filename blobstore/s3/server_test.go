package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/stofuse/stofuse/blobstore/s3"
)

// The tests run against a real S3 server, Versity Gateway over a temporary
// directory, started here on 127.0.0.1. test/run.sh installs it; without
// it the tests skip, except under CI=true, where they fail.
const (
	testAccessKey = "stofusetestkey"
	testSecretKey = "stofuse-test-secret-d41d8cd98f00b204"
	testBucket    = "stofuse-test"
	installHint   = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
)

// versitygw is one server process over one directory. It can be stopped
// and started again on the same address, as a crashed server would be.
type versitygw struct {
	binary string
	root   string // the posix backend's directory: one subdirectory per bucket
	addr   string // 127.0.0.1:port
	log    *os.File

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
}

var (
	sharedOnce   sync.Once
	sharedServer *versitygw
	sharedErr    error
	prefixCount  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedServer != nil {
		sharedServer.stop()
		os.RemoveAll(filepath.Dir(sharedServer.root))
	}
	os.Exit(code)
}

// findVersitygw looks in PATH, then where go install puts binaries:
// $(go env GOBIN), else $(go env GOPATH)/bin.
func findVersitygw(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath("versitygw"); err == nil {
		return path
	}
	var dirs []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := goEnv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(dir, "bin"))
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, "versitygw")
		if info, err := os.Stat(path); err == nil && !info.IsDir() {
			return path
		}
	}
	msg := "versitygw (Versity S3 Gateway) not found in PATH or $(go env GOPATH)/bin; install it with: " + installHint
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: S3 tests must not be skipped)")
	}
	t.Skip(msg)
	return ""
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// server returns the server shared by the tests that do not stop it.
func server(t testing.TB) *versitygw {
	t.Helper()
	binary := findVersitygw(t)
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stofuse-s3-test-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedServer, sharedErr = launch(binary, dir)
	})
	if sharedErr != nil {
		t.Fatalf("starting versitygw: %v", sharedErr)
	}
	return sharedServer
}

// ownServer starts a server only this test uses, stopped at its end.
func ownServer(t *testing.T) *versitygw {
	t.Helper()
	srv, err := launch(findVersitygw(t), t.TempDir())
	if err != nil {
		t.Fatalf("starting versitygw: %v", err)
	}
	t.Cleanup(srv.stop)
	return srv
}

// launch starts a server on a free port and creates the test bucket. A port
// taken between the probe and the start is retried with another.
func launch(binary, dir string) (*versitygw, error) {
	srv := &versitygw{binary: binary, root: filepath.Join(dir, "root")}
	if err := os.MkdirAll(srv.root, 0o700); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		return nil, err
	}
	srv.log = log
	for try := 0; ; try++ {
		srv.addr, err = freeAddr()
		if err == nil {
			err = srv.start()
		}
		if err == nil || try == 2 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if err := srv.client().MakeBucket(context.Background(), testBucket, minio.MakeBucketOptions{}); err != nil {
		srv.stop()
		return nil, fmt.Errorf("creating bucket: %w", err)
	}
	return srv, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs the server on srv.addr and waits until it answers S3 requests.
func (srv *versitygw) start() error {
	cmd := exec.Command(srv.binary, "--access", testAccessKey, "--secret", testSecretKey,
		"--port", srv.addr, "--quiet", "posix", srv.root)
	cmd.Stdout, cmd.Stderr = srv.log, srv.log
	// Its own process group, so that a test killed half-way does not
	// leave it behind attached to the terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	srv.mu.Lock()
	srv.cmd = cmd
	srv.mu.Unlock()

	client := srv.client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case waitErr := <-exited:
			return fmt.Errorf("versitygw on %s exited (%v); see %s", srv.addr, waitErr, srv.log.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.stop()
			return fmt.Errorf("versitygw on %s did not answer within 30s: %v", srv.addr, err)
		}
	}
}

// stop kills the server, as a crash would, and waits until it is gone.
func (srv *versitygw) stop() {
	srv.mu.Lock()
	cmd := srv.cmd
	srv.cmd = nil
	srv.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	// cmd.Wait runs in start's goroutine; wait for the port to close.
	for range 200 {
		conn, err := net.DialTimeout("tcp", srv.addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

func (srv *versitygw) endpoint() string { return "http://" + srv.addr }

// client is a plain minio client for setting up and inspecting the server
// behind the driver's back.
func (srv *versitygw) client() *minio.Client {
	client, err := minio.New(srv.addr, &minio.Options{
		Creds:      credentials.NewStaticV4(testAccessKey, testSecretKey, ""),
		MaxRetries: 1,
	})
	if err != nil {
		panic(err)
	}
	return client
}

// config returns a Config for a fresh, empty volume on srv: its own prefix
// in the test bucket. Retries are quick so that fault tests stay short.
func (srv *versitygw) config() s3.Config {
	return s3.Config{
		Endpoint:  srv.endpoint(),
		Bucket:    testBucket,
		Prefix:    fmt.Sprintf("vol%d/", prefixCount.Add(1)),
		Region:    "us-east-1",
		AccessKey: testAccessKey,
		SecretKey: testSecretKey,
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
func (srv *versitygw) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	for object := range srv.client().ListObjects(context.Background(), testBucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if object.Err != nil {
			t.Fatalf("listing %s: %v", prefix, object.Err)
		}
		keys = append(keys, object.Key)
	}
	return keys
}

// uploads lists the multipart uploads in progress under prefix.
func (srv *versitygw) uploads(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	for upload := range srv.client().ListIncompleteUploads(context.Background(), testBucket, prefix, true) {
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
