package diskaccess_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/localfs"
	"github.com/stofuse/stofuse/blobstore/memory"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/diskaccess/diskaccesstest"
)

// Benchmarks report MB/s of plaintext. Compare WriteBlob and Fetch with
// CryptoFloor run in the same invocation:
//
//	go test ./diskaccess -run XXX -bench . -count 5 | benchstat -
var benchSizes = []struct {
	name string
	size int
}{{"4MiB", 4 << 20}, {"256MiB", 256 << 20}}

var benchKey = bytes.Repeat([]byte{9}, 32)

func benchContent(kind string, size int) []byte {
	if kind == "text" {
		return diskaccesstest.TextContent(1, size)
	}
	return diskaccesstest.RandomContent(1, size)
}

// BenchmarkCryptoFloor is the least any sealed, content-addressed write or
// read must do: seal = SHA-256 of the plaintext plus AES-256-GCM seal of
// every frame; open = AES-256-GCM open of every frame.
func BenchmarkCryptoFloor(b *testing.B) {
	block, _ := aes.NewCipher(benchKey)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	frame := 1 << diskaccess.DefaultFrameShift
	for _, size := range benchSizes {
		plain := diskaccesstest.RandomContent(1, size.size)
		sealed := make([][]byte, 0, size.size/frame)
		for off := 0; off < len(plain); off += frame {
			sealed = append(sealed, aead.Seal(nil, nonce, plain[off:off+frame], nil))
		}
		out := make([]byte, frame+aead.Overhead())
		b.Run("seal/"+size.name, func(b *testing.B) {
			b.SetBytes(int64(size.size))
			for b.Loop() {
				sha256.Sum256(plain)
				for off := 0; off < len(plain); off += frame {
					aead.Seal(out[:0], nonce, plain[off:off+frame], nil)
				}
			}
		})
		b.Run("open/"+size.name, func(b *testing.B) {
			b.SetBytes(int64(size.size))
			for b.Loop() {
				for _, s := range sealed {
					if _, err := aead.Open(out[:0], nonce, s, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// discardDriver stores no blob (named objects, the volume descriptor among
// them, it does store): it measures WriteBlob's own work.
type discardDriver struct{ *memory.Store }

func (d discardDriver) RawStore(ctx context.Context, ref blobstore.Ref, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// RawCreate stages into nothing: BlobWriters write to a Stager.
func (d discardDriver) RawCreate(ctx context.Context, ref blobstore.Ref) (blobstore.StagedBlob, error) {
	return discardStaged{}, nil
}

type discardStaged struct{}

func (discardStaged) Write(p []byte) (int, error)       { return len(p), nil }
func (discardStaged) Publish(ctx context.Context) error { return nil }
func (discardStaged) Discard()                          {}

// forgetfulStore records nothing, so that every iteration writes anew.
type forgetfulStore struct{ *diskaccesstest.MemoryStore }

func (forgetfulStore) WriteBlobCreated(context.Context, *diskaccess.BlobMeta, int) error { return nil }

func newBenchController(b *testing.B, store diskaccess.MetadataStore, driver blobstore.Driver) *diskaccess.Controller {
	c := diskaccess.New(store)
	ctx := context.Background()
	if err := c.Initialize(ctx, "bench", driver); err != nil {
		b.Fatal(err)
	}
	if err := c.Mount(ctx, 1, "bench", driver); err != nil {
		b.Fatal(err)
	}
	return c
}

func localVolume(b *testing.B) blobstore.Driver {
	store, err := localfs.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return store
}

func BenchmarkWriteBlob(b *testing.B) {
	drivers := map[string]func(b *testing.B) blobstore.Driver{
		"discard": func(*testing.B) blobstore.Driver { return discardDriver{memory.New(1)} },
		"localfs": localVolume,
	}
	for _, kind := range []string{"random", "text"} {
		for _, size := range benchSizes {
			content := benchContent(kind, size.size)
			ref := blobstore.RefOf(content)
			for _, driverName := range []string{"discard", "localfs"} {
				b.Run(fmt.Sprintf("%s/%s/%s", kind, size.name, driverName), func(b *testing.B) {
					store := forgetfulStore{diskaccesstest.NewMemoryStore("c", "k", benchKey)}
					c := newBenchController(b, store, drivers[driverName](b))
					b.SetBytes(int64(size.size))
					for b.Loop() {
						if err := c.WriteBlob(context.Background(), 1, "c", ref, bytes.NewReader(content), true); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func BenchmarkFetch(b *testing.B) {
	keys := diskaccesstest.KeyRing{"k": benchKey}
	for _, kind := range []string{"random", "text"} {
		for _, size := range benchSizes {
			content := benchContent(kind, size.size)
			ref := blobstore.RefOf(content)
			for _, driverName := range []string{"memory", "localfs"} {
				b.Run(fmt.Sprintf("%s/%s/%s", kind, size.name, driverName), func(b *testing.B) {
					var driver blobstore.Driver = memory.New(1)
					if driverName == "localfs" {
						driver = localVolume(b)
					}
					c := newBenchController(b, diskaccesstest.NewMemoryStore("c", "k", benchKey), driver)
					if err := c.WriteBlob(context.Background(), 1, "c", ref, bytes.NewReader(content), true); err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(size.size))
					for b.Loop() {
						rc, err := c.Fetch(context.Background(), ref, keys, 1)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := io.Copy(io.Discard, rc); err != nil {
							b.Fatal(err)
						}
						rc.Close()
					}
				})
			}
		}
	}
}

// BenchmarkFrameSize writes 64 MiB with each allowed frame size, then
// reads it sequentially (MB/s) and in random 4 KiB reads (time per read).
// It is how DefaultFrameShift was chosen (docs/format.md).
func BenchmarkFrameSize(b *testing.B) {
	keys := diskaccesstest.KeyRing{"k": benchKey}
	ctx := context.Background()
	const size = 64 << 20
	for _, kind := range []string{"random", "text"} {
		content := benchContent(kind, size)
		ref := blobstore.RefOf(content)
		for shift := uint8(16); shift <= 20; shift++ {
			c := diskaccess.New(diskaccesstest.NewMemoryStore("c", "k", benchKey), diskaccess.WithFrameShift(shift))
			driver := memory.New(1)
			c.Initialize(ctx, "u", driver)
			c.Mount(ctx, 1, "u", driver)
			if err := c.WriteBlob(ctx, 1, "c", ref, bytes.NewReader(content), true); err != nil {
				b.Fatal(err)
			}
			meta, _ := c.MetadataStore().QueryBlobMetadata(ctx, ref, nil)
			name := fmt.Sprintf("%s/%dKiB", kind, 1<<shift>>10)
			b.Run(name+"/sequential", func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					rc, _ := c.Fetch(ctx, ref, keys, 1)
					io.Copy(io.Discard, rc)
					rc.Close()
				}
				b.ReportMetric(float64(meta.SizeOnDisk)/size, "stored/plain")
			})
			b.Run(name+"/random4KiB", func(b *testing.B) {
				blob, err := c.OpenBlob(ctx, ref, keys, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer blob.Close()
				buf := make([]byte, 4096)
				rng := rand.New(rand.NewPCG(1, 2))
				for b.Loop() {
					if _, err := blob.ReadAt(buf, rng.Int64N(size-4096)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
