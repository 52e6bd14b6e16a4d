package s3_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/s3"
)

// BenchmarkRawStore and BenchmarkRawFetch move one 256 MiB blob to and from
// the local versitygw, with the default part size: MB/s is the driver's
// throughput over loopback, server included.
const benchSize = 256 << 20

func benchSetup(b *testing.B) (*s3.Store, []byte) {
	cfg := server(b).config()
	cfg.PartSize = 0 // the default
	cfg.Retry = s3.RetryPolicy{}
	return open(b, cfg), randomBytes(benchSize, 11)
}

func BenchmarkRawStore(b *testing.B) {
	store, content := benchSetup(b)
	b.SetBytes(int64(len(content)))
	for i := 0; b.Loop(); i++ {
		if err := store.RawStore(context.Background(), blobstore.RefOf([]byte{byte(i)}), bytes.NewReader(content)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawFetch(b *testing.B) {
	store, content := benchSetup(b)
	ref := blobstore.RefOf(content[:1000])
	if err := store.RawStore(context.Background(), ref, bytes.NewReader(content)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		rc, err := store.RawFetch(context.Background(), ref)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(len(content)) {
			b.Fatal(n, err)
		}
		rc.Close()
	}
}
