package diskaccess_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/memory"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/diskaccess/diskaccesstest"
)

func TestControllerWithMemoryStore(t *testing.T) {
	diskaccesstest.RunControllerTests(t, func(t *testing.T) diskaccesstest.Env {
		key := bytes.Repeat([]byte{7}, 32)
		return diskaccesstest.Env{
			Store:  diskaccesstest.NewMemoryStore("default", "key-1", key),
			Keys:   diskaccesstest.KeyRing{"key-1": key},
			CollId: "default",
		}
	})
}

// shortDriver stores all but the last bytes of what it is given and reports
// success, as a buggy driver might.
type shortDriver struct{ *memory.Store }

func (d shortDriver) RawStore(ctx context.Context, ref blobstore.Ref, r io.Reader) error {
	head, _ := io.ReadAll(io.LimitReader(r, 98)) // stops inside the trailer
	return d.Store.RawStore(ctx, ref, bytes.NewReader(head))
}

// TestDriverStoppingInTheTrailerIsAnError: WriteBlob records a blob only
// if the driver read every stored byte.
func TestDriverStoppingInTheTrailerIsAnError(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	store := diskaccesstest.NewMemoryStore("c", "k", key)
	c := diskaccess.New(store)
	driver := shortDriver{memory.New(1)}
	c.Initialize(ctx, "u", driver)
	c.Mount(ctx, 1, "u", driver)
	content := []byte("a blob of a few bytes")
	if err := c.WriteBlob(ctx, 1, "c", blobstore.RefOf(content), bytes.NewReader(content), true); err == nil {
		t.Fatal("WriteBlob succeeded although the driver stopped reading in the trailer")
	}
	if found, _ := store.QueryBlobExists(ctx, blobstore.RefOf(content)); found {
		t.Fatal("a truncated blob was recorded")
	}
}

// TestStreamFromANetworkVolume: from a volume whose Properties prefer a
// stream, Fetch and Stream read the blob in one request; every frame is
// still authenticated, and damage is still found.
func TestStreamFromANetworkVolume(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	store := diskaccesstest.NewMemoryStore("c", "k", key)
	keys := diskaccesstest.KeyRing{"k": key}
	c := diskaccess.New(store, diskaccess.WithFrameShift(16))
	remote := memory.New(100, memory.WithProperties(blobstore.Properties{Remote: true, PreferStream: true, ReadAhead: 16}))
	c.Initialize(ctx, "u", remote)
	c.Mount(ctx, 1, "u", remote)
	content := diskaccesstest.RandomContent(5, 5<<16+123)
	ref := blobstore.RefOf(content)
	if err := c.WriteBlob(ctx, 1, "c", ref, bytes.NewReader(content), true); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, 3<<16 + 7} {
		blob, err := c.OpenBlob(ctx, ref, keys, 1)
		if err != nil {
			t.Fatal(err)
		}
		stream := blob.Stream(off)
		got, err := io.ReadAll(stream)
		stream.Close()
		if err != nil || !bytes.Equal(got, content[off:]) {
			t.Fatalf("Stream(%d) from a network volume: %d bytes, %v", off, len(got), err)
		}
	}
	remote.Corrupt(ref, func(b []byte) []byte { b[48+2*(1<<16+16)+5] ^= 1; return b })
	rc, err := c.Fetch(ctx, ref, keys, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	var corrupt *diskaccess.CorruptBlobError
	if !errors.As(err, &corrupt) || corrupt.Frame != 2 || len(got) != 2<<16 {
		t.Fatalf("streamed Fetch of a blob damaged in frame 2: %d bytes, %v", len(got), err)
	}
}
