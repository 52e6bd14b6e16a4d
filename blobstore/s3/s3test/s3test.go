// Package s3test runs a real S3 server for tests: Versity Gateway
// (versitygw) with its posix backend over a directory, listening on
// 127.0.0.1. No fake stands in for the server.
//
// Binary finds versitygw (see Find); when it is not installed, the test is
// skipped with the install command, or fails when CI=true, so that S3 tests
// always run in CI. Start runs a server that the test stops when it ends;
// Launch runs one that the caller stops, for a server shared by several
// tests. A Server can be stopped and restarted on the same address, as a
// crashed and restarted server would be.
//
// The posix backend keeps each bucket as a directory ROOT/BUCKET and each
// object as a plain file ROOT/BUCKET/KEY holding the object's bytes (its
// metadata is in extended attributes), so a test can damage an object by
// writing to ObjectPath. Parts of multipart uploads in progress are files
// under ROOT/BUCKET/.sgwtmp/multipart/ until the upload completes.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// AccessKey and SecretKey are the only credentials every Server
	// accepts (they are its root account).
	AccessKey = "stofusetestkey"
	SecretKey = "stofuse-test-secret-d41d8cd98f00b204"
	// InstallCommand installs the versitygw version the tests are written
	// against.
	InstallCommand = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
)

// How long a server may take to answer after it starts, and to exit after
// it is killed.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Find returns the path of the versitygw binary: the first found in PATH,
// else in $(go env GOBIN), else in the bin directory of each $(go env
// GOPATH) entry, which is where InstallCommand puts it.
func Find() (string, error) {
	if path, err := exec.LookPath("versitygw"); err == nil {
		return path, nil
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
		if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("versitygw (Versity S3 Gateway) not found in PATH, $(go env GOBIN) or $(go env GOPATH)/bin; install it with: %s", InstallCommand)
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Binary returns the path of the versitygw binary (see Find). When there is
// none it skips the test, or fails it when the environment has CI=true: S3
// tests must not be skipped in CI.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := Find()
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v (CI=true: S3 tests must not be skipped)", err)
	}
	t.Skip(err.Error())
	return ""
}

// Server is one versitygw process serving the directory Root over HTTP on
// Addr. Its methods may be called from any goroutine.
type Server struct {
	binary string
	root   string
	addr   string
	log    *os.File

	mu     sync.Mutex    // guards the fields below
	cmd    *exec.Cmd     // nil when stopped
	exited chan struct{} // closed when cmd has exited
	closed bool          // by Close: no restart
}

// Start runs a server only this test uses, over a new directory in
// t.TempDir(), with no bucket yet. It is stopped when the test ends. Start
// skips or fails the test as Binary does when versitygw is missing, and
// fails it when the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	binary := Binary(t)
	srv, err := Launch(binary, t.TempDir())
	if err != nil {
		t.Fatalf("starting versitygw: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// Launch runs binary (a versitygw) on a free port of 127.0.0.1, serving
// DIR/root (created if missing) and logging to DIR/versitygw.log, and
// returns once the server answers S3 requests. The server has no bucket
// yet. The caller must Close it; DIR is left for the caller to remove. A
// port taken by another process between choosing it and the server binding
// it is retried with another port, up to three times in all.
func Launch(binary, dir string) (*Server, error) {
	srv := &Server{binary: binary, root: filepath.Join(dir, "root")}
	if err := os.MkdirAll(srv.root, 0o700); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, "versitygw.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	srv.log = log
	for try := 1; ; try++ {
		srv.addr, err = freeAddr()
		if err == nil {
			err = srv.start()
		}
		if err == nil {
			return srv, nil
		}
		if try == 3 {
			log.Close()
			return nil, err
		}
	}
}

// freeAddr returns 127.0.0.1:PORT for a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs the server on srv.addr and waits until it answers, or fails
// if it exits or does not answer within startTimeout.
func (srv *Server) start() error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return errors.New("versitygw: server closed")
	}
	if srv.cmd != nil {
		srv.mu.Unlock()
		return fmt.Errorf("versitygw on %s is running already", srv.addr)
	}
	fmt.Fprintf(srv.log, "--- %s: starting versitygw on %s\n", time.Now().Format(time.RFC3339Nano), srv.addr)
	cmd := exec.Command(srv.binary, "--access", AccessKey, "--secret", SecretKey,
		"--port", srv.addr, "--quiet", "posix", srv.root)
	cmd.Stdout, cmd.Stderr = srv.log, srv.log
	// Its own process group, so that Stop can kill all of it and a test
	// interrupted from the terminal does not leave it behind; killed too
	// when the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		srv.mu.Unlock()
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	srv.cmd, srv.exited = cmd, exited
	srv.mu.Unlock()

	client := srv.Client()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			srv.Stop()
			return fmt.Errorf("versitygw on %s exited (%v) before answering; its log ends:\n%s", srv.addr, cmd.ProcessState, srv.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.Stop()
			return fmt.Errorf("versitygw on %s did not answer within %v: %v; its log ends:\n%s", srv.addr, startTimeout, err, srv.logTail())
		}
	}
}

// logTail returns the last lines of the server's log, for error messages
// (the log itself may be in a directory removed when the test ends).
func (srv *Server) logTail() string {
	body, err := os.ReadFile(srv.log.Name())
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-20):], []byte("\n")))
}

// Stop kills the server with SIGKILL, as a crash would: requests in flight
// get a broken connection, and what the server had written to its directory
// stays as it is (multipart uploads in progress included). It returns once
// the process has exited, so its port no longer accepts connections (it
// gives up waiting after 10 s, saying so on standard error). Stopping a
// stopped server does nothing.
func (srv *Server) Stop() {
	srv.mu.Lock()
	cmd, exited := srv.cmd, srv.exited
	srv.cmd, srv.exited = nil, nil
	srv.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole process group
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		fmt.Fprintf(os.Stderr, "s3test: versitygw (pid %d) on %s did not exit within %v of SIGKILL\n", cmd.Process.Pid, srv.addr, stopTimeout)
	}
}

// Restart starts a stopped server again, on the same address and over the
// same directory, with what it held when it stopped, and waits until it
// answers. It fails if the server is running, or if the port was taken by
// another process meanwhile.
func (srv *Server) Restart() error {
	return srv.start()
}

// Running says whether the server process is running (it is from Launch
// until Stop or Close, and from Restart until the next Stop or Close).
func (srv *Server) Running() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.cmd != nil
}

// Close stops the server for good and closes its log. Close may be called
// more than once.
func (srv *Server) Close() {
	srv.mu.Lock()
	srv.closed = true
	srv.mu.Unlock()
	srv.Stop()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.log != nil {
		srv.log.Close()
		srv.log = nil
	}
}

// Addr is the server's address, 127.0.0.1:PORT. It stays the same across
// Stop and Restart.
func (srv *Server) Addr() string { return srv.addr }

// Endpoint is the server's URL, http://127.0.0.1:PORT.
func (srv *Server) Endpoint() string { return "http://" + srv.addr }

// AccessKey returns the access key the server accepts (the constant
// AccessKey).
func (srv *Server) AccessKey() string { return AccessKey }

// SecretKey returns the secret key of AccessKey (the constant SecretKey).
func (srv *Server) SecretKey() string { return SecretKey }

// Root is the directory the posix backend serves: ROOT/BUCKET is a bucket,
// ROOT/BUCKET/KEY an object.
func (srv *Server) Root() string { return srv.root }

// ObjectPath is the file holding the bytes of object key in bucket. A test
// may damage the object by writing to it; the server does not notice.
func (srv *Server) ObjectPath(bucket, key string) string {
	return filepath.Join(srv.root, bucket, filepath.FromSlash(key))
}

// Client returns a plain minio client of the server, with the server's
// credentials and no retries, for setting up and inspecting the server
// behind the back of the code under test.
func (srv *Server) Client() *minio.Client {
	client, err := minio.New(srv.addr, &minio.Options{
		Creds:      credentials.NewStaticV4(AccessKey, SecretKey, ""),
		Region:     "us-east-1",
		MaxRetries: 1,
	})
	if err != nil {
		panic(err) // only a malformed address fails, and addr is ours
	}
	return client
}

// MakeBucket creates a bucket on the server.
func (srv *Server) MakeBucket(bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Client().MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("creating bucket %q on %s: %w", bucket, srv.Endpoint(), err)
	}
	return nil
}
