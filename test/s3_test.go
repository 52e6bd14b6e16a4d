package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore/s3/s3test"
)

// The S3 tests run the stofuse binary against a real S3 server, Versity
// Gateway, that each test starts on 127.0.0.1 over its own directory (see
// package s3test: without versitygw they skip, or fail under CI=true).

const (
	s3Bucket = "stofuse-e2e"
	s3Prefix = "vol1/"
)

// s3Env gives the binary the server's credentials, and nothing else that
// could change which credentials it uses.
func s3Env(srv *s3test.Server, secret string) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey(), "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}
}

// newS3Store starts a server with a bucket and returns it with a new store
// that has the server's credentials in its environment and an S3 volume
// s3vol on the bucket, under s3Prefix. The server is stopped when the test
// ends, after the test's mounts are gone.
func newS3Store(t *testing.T) (*store, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	if err := srv.MakeBucket(s3Bucket); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	s.env = append(s.env, s3Env(srv, srv.SecretKey())...)
	out := s.mustRun("volume", "add", "s3vol", "--s3-endpoint", srv.Endpoint(), "--s3-bucket", s3Bucket, "--s3-prefix", s3Prefix)
	if want := "at " + srv.Endpoint() + "/" + s3Bucket + "/" + s3Prefix; !strings.Contains(out, want) {
		t.Fatalf("volume add printed %q, want it to say %q", out, want)
	}
	return s, srv
}

// objectFiles returns the files of the objects in the bucket, as the
// server's posix backend keeps them, by key; multipart uploads in progress
// (under .sgwtmp) are left out.
func objectFiles(t *testing.T, srv *s3test.Server) map[string]string {
	t.Helper()
	bucketDir := filepath.Join(srv.Root(), s3Bucket)
	files := map[string]string{}
	err := filepath.WalkDir(bucketDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != bucketDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			key, _ := filepath.Rel(bucketDir, path)
			files[filepath.ToSlash(key)] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// objectOf finds the object that holds blob ref on the server: the one
// object whose key ends in the ref, under s3Prefix.
func objectOf(t *testing.T, srv *s3test.Server, ref string) (key, path string) {
	t.Helper()
	for k, p := range objectFiles(t, srv) {
		if strings.HasPrefix(k, s3Prefix) && strings.HasSuffix(k, "/"+ref) {
			if key != "" {
				t.Fatalf("blob %s is in two objects: %s and %s", ref, key, k)
			}
			key, path = k, p
		}
	}
	if key == "" {
		t.Fatalf("no object on the server holds blob %s; objects: %v", ref, objectFiles(t, srv))
	}
	return key, path
}

// flipByte inverts the byte at offset of a file.
func flipByte(t *testing.T, path string, offset int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, offset); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, offset); err != nil {
		t.Fatal(err)
	}
}

// catSHA256 runs stofuse cat REF and returns the SHA-256 of what it
// printed, without holding it in memory.
func (s *store) catSHA256(ref string) string {
	s.t.Helper()
	cmd := exec.Command(stofuseBin, "cat", ref)
	cmd.Env = s.env
	h := sha256.New()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = h, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("stofuse cat %s: %v\n%s", ref, err, stderr.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

var putLine = regexp.MustCompile(`(?m)^([0-9a-f]{64})  (.+)$`)

// putRefs runs stofuse put with args and returns the ref printed for each
// file, by file name.
func (s *store) putRefs(args ...string) map[string]string {
	s.t.Helper()
	out := s.mustRun(append([]string{"put"}, args...)...)
	refs := map[string]string{}
	for _, match := range putLine.FindAllStringSubmatch(out, -1) {
		refs[match[2]] = match[1]
	}
	return refs
}

// requireScrubClean scrubs volume and fails unless it is clean.
func (s *store) requireScrubClean(volume string) {
	s.t.Helper()
	out := s.mustRun("scrub", "--volume", volume)
	if !strings.Contains(out, "scrubbed volume "+volume+":") || !strings.Contains(out, " 0 damaged, 0 missing, 0 orphans, 0 errors") {
		s.t.Fatalf("scrub --volume %s:\n%s", volume, out)
	}
}

// volumesOf returns the "volumes:" line of stofuse stat REF.
func (s *store) volumesOf(ref string) string {
	s.t.Helper()
	for _, line := range strings.Split(s.mustRun("stat", ref), "\n") {
		if rest, ok := strings.CutPrefix(line, "volumes:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	s.t.Fatalf("stofuse stat %s prints no volumes: line", ref)
	return ""
}

// TestS3Volume: put (one PUT, and multipart), cat, stat, scrub (clean, and
// with a byte flipped on the server), and replicate localfs -> S3 and
// S3 -> localfs, against a real S3 server.
func TestS3Volume(t *testing.T) {
	s, srv := newS3Store(t)
	src := t.TempDir()
	small := filepath.Join(src, "small")
	if err := os.WriteFile(small, []byte("hello, s3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// medium spans frames of 128 KiB in one PUT; large spans three
	// multipart parts of the default 16 MiB.
	files := map[string]string{
		small:                        sha256Hex([]byte("hello, s3\n")),
		filepath.Join(src, "medium"): writeRandomFile(t, filepath.Join(src, "medium"), 21, 3<<20+17),
		filepath.Join(src, "large"):  writeRandomFile(t, filepath.Join(src, "large"), 22, 40<<20+1234),
	}
	large := files[filepath.Join(src, "large")]
	refs := s.putRefs("--volume", "s3vol", small, filepath.Join(src, "medium"), filepath.Join(src, "large"))
	for file, want := range files {
		if refs[file] != want {
			t.Fatalf("put printed ref %q for %s, want %s", refs[file], file, want)
		}
	}
	for file, ref := range files {
		if got := s.catSHA256(ref); got != ref {
			t.Fatalf("stofuse cat of %s gives content with SHA-256 %s", file, got)
		}
		if got := s.volumesOf(ref); got != "s3vol" {
			t.Fatalf("stat %s: volumes %q, want s3vol", ref, got)
		}
	}
	if got := s.mustRun("cat", files[small]); got != "hello, s3\n" {
		t.Fatalf("cat of the small file = %q", got)
	}
	// The blobs are objects on the server (stat said they are on s3vol
	// only), the large one stored as a multipart upload: its ETag ends in
	// -PARTS.
	if objects := objectFiles(t, srv); len(objects) != 5 { // and the volume descriptor and key envelopes
		t.Fatalf("objects on the server: %v, want the 3 blobs, the volume descriptor and the key envelopes", objects)
	}
	largeKey, largePath := objectOf(t, srv, large)
	info, err := srv.Client().StatObject(context.Background(), s3Bucket, largeKey, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`-[3-9]$`).MatchString(info.ETag) {
		t.Fatalf("the 40 MiB blob has ETag %q: not a multipart upload of 3 or more parts", info.ETag)
	}

	s.requireScrubClean("s3vol")

	// A byte flipped in the object file, behind the server's back: scrub
	// names the blob as damaged and exits 1; put back, it is clean again.
	offset := info.Size / 2
	flipByte(t, largePath, offset)
	r := s.run("scrub", "--volume", "s3vol")
	if r.code != 1 || !regexp.MustCompile(`(?m)^DAMAGED  `+large+`  volume s3vol: frame \d+`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, " 1 damaged, 0 missing") {
		t.Fatalf("scrub of a damaged S3 volume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	flipByte(t, largePath, offset)
	s.requireScrubClean("s3vol")

	// localfs -> S3.
	local := filepath.Join(src, "local")
	localRef := writeRandomFile(t, local, 23, 2<<20+5)
	if refs := s.putRefs(local); refs[local] != localRef {
		t.Fatalf("put on the default volume printed %v, want %s", refs, localRef)
	}
	if out := s.mustRun("replicate", "--from", "default", "--to", "s3vol"); !strings.Contains(out, "replicated 1 blobs") ||
		!strings.Contains(out, "from default to s3vol; 0 already there; 0 failed") {
		t.Fatalf("replicate default -> s3vol:\n%s", out)
	}
	if got := s.volumesOf(localRef); got != "default, s3vol" {
		t.Fatalf("after replicate, stat %s: volumes %q, want default, s3vol", localRef, got)
	}
	objectOf(t, srv, localRef)

	// S3 -> localfs, to a second local volume.
	s.mustRun("volume", "add", "local2", "--path", filepath.Join(t.TempDir(), "local2"))
	if out := s.mustRun("replicate", "--from", "s3vol", "--to", "local2"); !strings.Contains(out, "replicated 4 blobs") ||
		!strings.Contains(out, "from s3vol to local2; 0 already there; 0 failed") {
		t.Fatalf("replicate s3vol -> local2:\n%s", out)
	}
	if got := s.volumesOf(large); got != "s3vol, local2" {
		t.Fatalf("after replicate, stat %s: volumes %q, want s3vol, local2", large, got)
	}
	s.requireScrubClean("s3vol")
	s.requireScrubClean("local2")
	s.requireScrubClean("default")

	// A second run copies nothing, either way.
	for _, fromTo := range [][2]string{{"default", "s3vol"}, {"s3vol", "local2"}} {
		out := s.mustRun("replicate", "--from", fromTo[0], "--to", fromTo[1])
		if !strings.Contains(out, "replicated 0 blobs (0 B) from "+fromTo[0]+" to "+fromTo[1]+";") || !strings.Contains(out, " 0 failed") {
			t.Fatalf("second replicate %s -> %s:\n%s", fromTo[0], fromTo[1], out)
		}
	}
}

// TestS3Mount: a mount of the S3 volume reads its blobs through ref/, and
// a file copied into ref/ is stored on the S3 volume.
func TestS3Mount(t *testing.T) {
	requireFuse(t)
	s, srv := newS3Store(t)
	src := t.TempDir()
	stored := filepath.Join(src, "stored")
	storedRef := writeRandomFile(t, stored, 31, 5<<20+17)
	s.putRefs("--volume", "s3vol", stored)

	m := s.mount("--volume", "s3vol")
	sh(t, "cmp "+stored+" "+m.ref(storedRef))
	// A read in the middle, as a program seeking in the file does.
	want, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(m.ref(storedRef))
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 1000)
	_, err = f.ReadAt(part, 3<<20+99)
	f.Close()
	if err != nil || !bytes.Equal(part, want[3<<20+99:3<<20+1099]) {
		t.Fatalf("ReadAt in the middle of a blob on the S3 mount: %v or wrong bytes", err)
	}

	written := filepath.Join(src, "written")
	writtenRef := writeRandomFile(t, written, 32, 3<<20+5)
	sh(t, "cp "+written+" "+m.ref(writtenRef))
	sh(t, "cmp "+written+" "+m.ref(writtenRef))

	// files/ on an S3 volume: a small tree in, read back after a remount.
	tree := filepath.Join(m.dir, "files", "default", "tree")
	sh(t, "cp -a "+src+" "+tree)
	// A bucket has no size: statfs says the spool's, on the store's disk.
	wantStatfs := strings.TrimSpace(sh(t, "stat -f -c '%S %b' "+filepath.Join(s.dir, "spool"))) + " 255"
	for _, path := range []string{m.dir, tree, m.ref(writtenRef)} {
		if got := strings.TrimSpace(sh(t, "stat -f -c '%S %b %l' "+path)); got != wantStatfs {
			t.Errorf("stat -f %s on an S3 volume: %q, want the spool's filesystem's %q (block size, blocks, name length)", path, got, wantStatfs)
		}
	}
	m.unmount()
	m = s.mount("--volume", "s3vol")
	sh(t, "diff -r "+src+" "+filepath.Join(m.dir, "files", "default", "tree"))
	m.unmount()

	if got := s.volumesOf(writtenRef); got != "s3vol" {
		t.Fatalf("the file copied into the mount: stat says volumes %q, want s3vol", got)
	}
	if got := s.catSHA256(writtenRef); got != writtenRef {
		t.Fatalf("stofuse cat of the file copied into the mount gives SHA-256 %s", got)
	}
	objectOf(t, srv, writtenRef)
	s.requireScrubClean("s3vol")
}

// TestS3Faults: a wrong secret key is refused with a clear error that does
// not show it, and nothing is recorded; a server that stops in the middle
// of a put makes the put fail with a clear error, without recording the
// blob, and the same put succeeds once the server is back.
func TestS3Faults(t *testing.T) {
	srv := s3test.Start(t)
	if err := srv.MakeBucket(s3Bucket); err != nil {
		t.Fatal(err)
	}

	t.Run("wrong secret", func(t *testing.T) {
		s := newStore(t)
		const wrongSecret = "wrong-secret-0123456789abcdef"
		s.env = append(s.env, s3Env(srv, wrongSecret)...)
		r := s.run("volume", "add", "badvol", "--s3-endpoint", srv.Endpoint(), "--s3-bucket", s3Bucket, "--s3-prefix", "bad/")
		if r.code != 1 && r.code != 2 {
			t.Fatalf("volume add with a wrong secret: exit %d, want 1 or 2\n%s%s", r.code, r.stdout, r.stderr)
		}
		msg := r.stdout + r.stderr
		if !strings.Contains(msg, "credentials") || !strings.Contains(msg, srv.AccessKey()) {
			t.Fatalf("volume add with a wrong secret says %q: want it to name the credentials and the access key", msg)
		}
		for _, secret := range []string{wrongSecret, srv.SecretKey()} {
			if strings.Contains(msg, secret) {
				t.Fatalf("volume add with a wrong secret shows a secret key: %q", msg)
			}
		}
		if out := s.mustRun("volume", "ls"); strings.Contains(out, "badvol") {
			t.Fatalf("volume ls lists the volume whose add failed:\n%s", out)
		}
		for key := range objectFiles(t, srv) {
			if strings.HasPrefix(key, "bad/") {
				t.Fatalf("the failed volume add left object %s", key)
			}
		}
	})

	t.Run("server stopped mid-put", func(t *testing.T) {
		s := newStore(t)
		s.env = append(s.env, s3Env(srv, srv.SecretKey())...)
		s.mustRun("volume", "add", "s3vol", "--s3-endpoint", srv.Endpoint(), "--s3-bucket", s3Bucket, "--s3-prefix", s3Prefix)
		// 12 parts of the default 16 MiB: the upload is still running
		// when the second part arrives at the server.
		big := filepath.Join(t.TempDir(), "big")
		ref := writeRandomFile(t, big, 41, 192<<20)

		put := exec.Command(stofuseBin, "put", "--volume", "s3vol", big)
		put.Env = s.env
		var stdout, stderr bytes.Buffer
		put.Stdout, put.Stderr = &stdout, &stderr
		if err := put.Start(); err != nil {
			t.Fatal(err)
		}
		// putErr is set before exited is closed.
		var putErr error
		exited := make(chan struct{})
		go func() {
			putErr = put.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			put.Process.Kill()
			<-exited
		})
		// The server keeps a multipart upload's parts in files named by
		// their number: once part 2 is arriving, part 1 has gone through.
		parts := filepath.Join(srv.Root(), s3Bucket, ".sgwtmp", "multipart", "*", "*", "2")
		for deadline := time.Now().Add(2 * time.Minute); ; {
			if found, _ := filepath.Glob(parts); len(found) > 0 {
				break
			}
			select {
			case <-exited:
				t.Fatalf("the put ended (%v) before its second part reached the server; stderr:\n%s", putErr, stderr.String())
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("the put did not start uploading part 2 within 2 minutes")
			}
		}
		srv.Stop()
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			t.Fatal("the put still runs 2 minutes after the server stopped")
		}
		exit, ok := putErr.(*exec.ExitError)
		if !ok || exit.ExitCode() != 1 {
			t.Fatalf("put with the server stopped mid-upload: %v, want exit 1\nstdout: %s\nstderr: %s", putErr, stdout.String(), stderr.String())
		}
		for _, want := range []string{"big: writing blob " + ref, srv.Endpoint(), "server unavailable", "1 of 1 files not stored"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("put with the server stopped: stderr does not say %q:\n%s", want, stderr.String())
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("put that failed printed on stdout: %q", stdout.String())
		}
		if r := s.run("stat", ref); r.code == 0 || !strings.Contains(r.stderr, "no blob "+ref) {
			t.Fatalf("stat of the blob whose put failed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}

		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		if refs := s.putRefs("--volume", "s3vol", big); refs[big] != ref {
			t.Fatalf("put after the restart printed %v, want %s", refs, ref)
		}
		if got := s.volumesOf(ref); got != "s3vol" {
			t.Fatalf("stat after the put: volumes %q, want s3vol", got)
		}
		s.requireScrubClean("s3vol")
	})
}
