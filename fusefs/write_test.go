package fusefs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore/badger"
)

// These tests mount in this process, with a real Badger store and localfs
// volume, and write and read with plain file calls (which cannot deadlock
// with the server: no call here holds a lock the server needs). The
// end-to-end tests in test/ drive the built binary.

// fullDisk is a volume whose disk can fill up.
type fullDisk struct {
	*localfs.Store
	full atomic.Bool
	// gate, when set, holds every staged write until it is closed; held
	// is signalled (without blocking) when one waits.
	gate atomic.Pointer[chan struct{}]
	held chan struct{}
}

func (d *fullDisk) RawStore(ctx context.Context, ref blobstore.Ref, r io.Reader) error {
	if d.full.Load() && !ref.IsZero() {
		io.CopyN(io.Discard, r, 1000)
		return &os.PathError{Op: "write", Path: ref.String(), Err: syscall.ENOSPC}
	}
	return d.Store.RawStore(ctx, ref, r)
}

// RawCreate stages on the volume; its writes fail as RawStore's do.
func (d *fullDisk) RawCreate(ctx context.Context, ref blobstore.Ref) (blobstore.StagedBlob, error) {
	staged, err := d.Store.RawCreate(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &fillingBlob{StagedBlob: staged, disk: d, ref: ref}, nil
}

type fillingBlob struct {
	blobstore.StagedBlob
	disk *fullDisk
	ref  blobstore.Ref
}

func (b *fillingBlob) Write(p []byte) (int, error) {
	if gate := b.disk.gate.Load(); gate != nil {
		select {
		case b.disk.held <- struct{}{}:
		default:
		}
		<-*gate
	}
	if b.disk.full.Load() {
		return 0, &os.PathError{Op: "write", Path: b.ref.String(), Err: syscall.ENOSPC}
	}
	return b.StagedBlob.Write(p)
}

type rig struct {
	dir  string // the mountpoint
	disk *fullDisk
	meta *badger.Store
}

func (r *rig) ref(name string) string { return filepath.Join(r.dir, "ref", name) }

// requireFuse skips a test that mounts when there is no FUSE, except in
// CI, where that is a failure.
func requireFuse(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no /dev/fuse: %v", err)
		}
		t.Skip("no /dev/fuse")
	}
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, func(*Config) {})
}

// newRigWith is newRig with the mount's Config changed by adjust first.
func newRigWith(t *testing.T, adjust func(*Config)) *rig {
	t.Helper()
	requireFuse(t)
	ctx := context.Background()
	meta, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	kek, err := keyring.GenerateKeyFile(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.Initialize(ctx, kek, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := meta.CreateCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	volume, err := localfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{Store: volume, held: make(chan struct{}, 1)}
	ctl := diskaccess.New(meta, diskaccess.WithFrameCache(diskaccess.NewFrameCache(16<<20)))
	if err := ctl.Initialize(ctx, "u", disk); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Mount(ctx, 1, "u", disk); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Controller: ctl, Catalog: meta, Tree: meta, Keys: meta.Ring(), Volume: 1, Collection: "c", SpoolDir: t.TempDir()}
	adjust(&cfg)
	root := New(cfg)
	opts := root.Options()
	opts.DirectMount = os.Geteuid() == 0
	dir := t.TempDir()
	server, err := Mount(dir, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Unmount() })
	return &rig{dir: dir, disk: disk, meta: meta}
}

func randomContent(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// TestReadRightAfterClose: a file stored under its hex name reads back
// whole as soon as close returns (the kernel releases the handle later).
func TestReadRightAfterClose(t *testing.T) {
	r := newRig(t)
	for i := range 30 {
		content, name := randomContent(t, 100_000+i)
		if err := os.WriteFile(r.ref(name), content, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(r.ref(name))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("read back right after close: %d bytes, %v; want %d", len(got), err, len(content))
		}
	}
}

// TestReaderDoesNotStoreHalfAFile: a reader's close while a writer is half
// way stores nothing, and the writer's close stores the whole file.
func TestReaderDoesNotStoreHalfAFile(t *testing.T) {
	r := newRig(t)
	for _, hexName := range []bool{true, false} {
		content, ref := randomContent(t, 1<<20)
		name := ref
		if !hexName {
			name = "temp.bin"
		}
		w, err := os.Create(r.ref(name))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(content[:300_000])
		if reader, err := os.Open(r.ref(name)); err == nil {
			reader.Close()
		}
		if err := w.Sync(); err != nil {
			t.Fatalf("fsync half way (hex name %v): %v", hexName, err)
		}
		w.Write(content[300_000:])
		if err := w.Close(); err != nil {
			t.Fatalf("the writer's close (hex name %v): %v", hexName, err)
		}
		if got, err := os.ReadFile(r.ref(ref)); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("the stored file (hex name %v): %d bytes, %v", hexName, len(got), err)
		}
	}
	// Blobs: the whole file (under a hex name it was streamed and checked),
	// and for the spooled file the half that fsync stored: fsync stores.
	entries, _ := os.ReadDir(r.ref(""))
	var blobs int
	for _, e := range entries {
		if _, err := blobstore.ParseRef(e.Name()); err == nil {
			blobs++
		}
	}
	if blobs != 2 {
		t.Fatalf("ref/ holds %d blobs, want 2 (the file, and the half the fsync of the spooled file stored)", blobs)
	}
}

// TestInterleavedRewritesDoNotHang: two handles rewriting one blob, written
// alternately by one thread (tee FILE ref/X ref/X), finish.
func TestInterleavedRewritesDoNotHang(t *testing.T) {
	r := newRig(t)
	content, ref := randomContent(t, 1<<20)
	if err := os.WriteFile(r.ref(ref), content, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		a, err := os.OpenFile(r.ref(ref), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			done <- err
			return
		}
		b, err := os.OpenFile(r.ref(ref), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			done <- err
			return
		}
		for off := 0; off < len(content); off += 65536 {
			a.Write(content[off : off+65536])
			b.Write(content[off : off+65536])
		}
		errA, errB := a.Close(), b.Close()
		done <- errors.Join(errA, errB)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rewriting a blob with its own content through two handles: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("two interleaved rewrites of one blob hang")
	}
}

// TestFullDiskIsENOSPCAndRetryable: a stream that fails because the disk
// is full says ENOSPC, leaves no name behind, and a retry once there is
// space succeeds.
func TestFullDiskIsENOSPCAndRetryable(t *testing.T) {
	r := newRig(t)
	content, ref := randomContent(t, 1<<20)
	r.disk.full.Store(true)
	err := os.WriteFile(r.ref(ref), content, 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing to a full disk: %v, want ENOSPC", err)
	}
	if _, err := os.Stat(r.ref(ref)); !os.IsNotExist(err) {
		t.Fatalf("the name of a file that could not be stored is still there: %v", err)
	}
	r.disk.full.Store(false)
	if err := os.WriteFile(r.ref(ref), content, 0o644); err != nil {
		t.Fatalf("retry with space: %v", err)
	}
	if got, _ := os.ReadFile(r.ref(ref)); !bytes.Equal(got, content) {
		t.Fatal("the retried file reads wrong")
	}
}

// TestStatDuringCommitDoesNotRevert: a stat that reads the store while a
// file is being stored must not bring the old content back: after close,
// the file reads new, and an edit builds on the new content.
func TestStatDuringCommitDoesNotRevert(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(r.dir, "files", "c", "f")
	for round := range 3 {
		if err := os.WriteFile(path, []byte("old content\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		v2, ref := randomContent(t, 20<<20+round)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					os.Stat(path)
				}
			}
		}()
		err := os.WriteFile(path, v2, 0o644)
		close(stop)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, v2) {
			t.Fatalf("round %d: after close the file reads %d bytes, not the %d written", round, len(got), len(v2))
		}
		buf := make([]byte, 64)
		n, _ := syscall.Getxattr(path, "user.stofuse.ref", buf)
		if string(buf[:n]) != ref {
			t.Fatalf("round %d: user.stofuse.ref is %s, want %s", round, buf[:n], ref)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("Z"), 0)
		f.Close()
		got, _ := os.ReadFile(path)
		if len(got) != len(v2) || got[0] != 'Z' || !bytes.Equal(got[1:], v2[1:]) {
			t.Fatalf("round %d: an edit after the write built on other content (%d bytes)", round, len(got))
		}
	}
}

// TestTeeIntoFilesAndRef: tee writing one content into files/ and into
// ref/<its hash> at once, in both orders and past the size at which the
// files/ close used to wait for the ref/ stream's lock while that stream
// waited for tee's EOF (a hang in fuse_flush no signal could end). Both
// files must end up stored, with the content.
func TestTeeIntoFilesAndRef(t *testing.T) {
	if _, err := exec.LookPath("tee"); err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	for _, size := range []int{200_000, 20 << 20} {
		for _, filesFirst := range []bool{true, false} {
			content, ref := randomContent(t, size)
			named := filepath.Join(r.dir, "files", "c", fmt.Sprintf("tee-%d-%v", size, filesFirst))
			targets := []string{named, r.ref(ref)}
			if !filesFirst {
				slices.Reverse(targets)
			}
			tee := exec.Command("tee", targets...)
			tee.Stdin, tee.Stdout = bytes.NewReader(content), io.Discard
			if err := tee.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tee.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("tee %v (%d bytes): %v", targets, size, err)
				}
			case <-time.After(60 * time.Second):
				tee.Process.Kill()
				t.Fatalf("tee %v (%d bytes) hangs", targets, size)
			}
			for _, path := range targets {
				if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
					t.Fatalf("%s after tee: %d bytes (%v), want the %d written", path, len(got), err, size)
				}
			}
		}
	}
}

// TestFilesCloseDoesNotWaitForRefStream: while another writer holds
// ref/<hash> open half-written, a copy of the same content into files/
// closes at once; the ref/ writer then finishes and is stored too.
func TestFilesCloseDoesNotWaitForRefStream(t *testing.T) {
	r := newRig(t)
	content, ref := randomContent(t, 4<<20)
	stream, err := os.OpenFile(r.ref(ref), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Write(content[:len(content)/2]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(filepath.Join(r.dir, "files", "c", "copy"), content, 0o644) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("copy into files/: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a close in files/ waits for an unfinished ref/ stream of the same content")
	}
	if _, err := stream.Write(content[len(content)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := stream.Close(); err != nil {
		t.Fatalf("closing the ref/ stream after files/ stored the same blob: %v", err)
	}
	if got, err := os.ReadFile(r.ref(ref)); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ref/%s: %d bytes (%v), want the content", ref, len(got), err)
	}
}

// TestStatWhileClosing: while a file of files/ is being stored at close
// (its blob's writes held up here), stat of it answers at once, with the
// new size.
func TestStatWhileClosing(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(r.dir, "files", "c", "slow")
	gate := make(chan struct{})
	r.disk.gate.Store(&gate)
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(path, []byte("stored slowly"), 0o644) }()
	select {
	case <-r.disk.held:
	case err := <-done:
		t.Fatalf("the write finished before its blob was stored: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the close never reached the volume")
	}
	stat := make(chan error, 1)
	go func() {
		info, err := os.Stat(path)
		if err == nil && info.Size() != int64(len("stored slowly")) {
			err = fmt.Errorf("size %d", info.Size())
		}
		stat <- err
	}()
	select {
	case err := <-stat:
		if err != nil {
			t.Errorf("stat while the file is stored: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("stat waits for the file being stored")
	}
	r.disk.gate.Store(nil)
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "stored slowly" {
		t.Fatalf("after close: %q, %v", got, err)
	}
}

// TestFsyncBeforeCloseOfAStream: dd conv=fsync into ref/<hex> fsyncs
// after its last write and before its close, while the file is still a
// stream (it can be stored only once complete, at close). The commit that
// fsync promises must then come after the blob is stored: at the close.
func TestFsyncBeforeCloseOfAStream(t *testing.T) {
	content, name := randomContent(t, 3<<20)
	ref, _ := blobstore.ParseRef(name)
	var meta atomic.Pointer[badger.Store]
	var committedStored atomic.Bool // a commit ran after the blob was recorded
	r := newRigWith(t, func(cfg *Config) {
		cfg.Commit = func(ctx context.Context) error {
			if m := meta.Load(); m != nil {
				if _, _, err := m.BlobRecord(ctx, ref); err == nil {
					committedStored.Store(true)
				}
			}
			return nil
		}
	})
	meta.Store(r.meta)
	f, err := os.OpenFile(r.ref(name), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync of a stream: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !committedStored.Load() {
		t.Fatal("no commit ran after the fsynced stream was stored: fsync's promise was not kept")
	}
}
