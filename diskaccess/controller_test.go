package diskaccess_test

import (
	"bytes"
	"context"
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
	if diskaccess.IsVolumeDescriptor(ref) {
		return d.Store.RawStore(ctx, ref, r)
	}
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
