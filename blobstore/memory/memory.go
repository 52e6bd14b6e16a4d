// Package memory is a blobstore.Driver that keeps blobs in RAM. It is for
// unit tests of the layers above a driver; it passes the same conformance
// suite as the real drivers.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// Store is an in-memory blobstore.Driver.
type Store struct {
	cost       int
	properties blobstore.Properties

	mu      sync.Mutex // guards blobs and objects
	blobs   map[blobstore.Ref]stored
	objects map[string]stored // named objects, by name
}

// stored is one blob or named object and when it was stored.
type stored struct {
	data    []byte
	modTime time.Time
}

var (
	_ blobstore.Driver             = (*Store)(nil)
	_ blobstore.RandomAccessDriver = (*Store)(nil)
)

// Option changes a Store's defaults.
type Option func(*Store)

// WithProperties makes the store report p (the default is a local volume's
// zero Properties), so that a test can stand in for a network volume.
func WithProperties(p blobstore.Properties) Option {
	return func(s *Store) { s.properties = p }
}

// New returns an empty store with the given routing cost.
func New(routingCost int, opts ...Option) *Store {
	s := &Store{cost: routingCost, blobs: make(map[blobstore.Ref]stored), objects: make(map[string]stored)}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

func notFound(ref blobstore.Ref) error {
	return fmt.Errorf("memory: blob %s: %w", ref, fs.ErrNotExist)
}

// RoutingCost implements blobstore.Driver.
func (s *Store) RoutingCost() int { return s.cost }

// Properties implements blobstore.Driver.
func (s *Store) Properties() blobstore.Properties { return s.properties }

// RawStore implements blobstore.Driver.
func (s *Store) RawStore(ctx context.Context, ref blobstore.Ref, content io.Reader) error {
	data, err := readContent(ctx, content)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[ref] = stored{data, time.Now()}
	return nil
}

// readContent reads what is to be stored whole, before anything is stored:
// a reader that fails, or a cancelled ctx, leaves the old bytes in place.
func readContent(ctx context.Context, content io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, content); err != nil {
		return nil, err
	}
	return buf.Bytes(), ctx.Err()
}

func (s *Store) get(ref blobstore.Ref) (stored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	blob, ok := s.blobs[ref]
	if !ok {
		return stored{}, notFound(ref)
	}
	return blob, nil
}

// RawFetch implements blobstore.Driver.
func (s *Store) RawFetch(ctx context.Context, ref blobstore.Ref) (io.ReadCloser, error) {
	blob, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(blob.data)), nil
}

// RawOpen implements blobstore.RandomAccessDriver.
func (s *Store) RawOpen(ctx context.Context, ref blobstore.Ref) (blobstore.RawReaderAt, error) {
	blob, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	return readerAt{bytes.NewReader(blob.data)}, nil
}

type readerAt struct{ *bytes.Reader }

func (readerAt) Close() error { return nil }

// Stat implements blobstore.Driver.
func (s *Store) Stat(ctx context.Context, ref blobstore.Ref) (blobstore.BlobInfo, error) {
	blob, err := s.get(ref)
	if err != nil {
		return blobstore.BlobInfo{}, err
	}
	return blobstore.BlobInfo{Ref: ref, Size: int64(len(blob.data)), ModTime: blob.modTime}, nil
}

// List implements blobstore.Driver.
func (s *Store) List(ctx context.Context, fn func(blobstore.BlobInfo) error) error {
	s.mu.Lock()
	infos := make([]blobstore.BlobInfo, 0, len(s.blobs))
	for ref, blob := range s.blobs {
		infos = append(infos, blobstore.BlobInfo{Ref: ref, Size: int64(len(blob.data)), ModTime: blob.modTime})
	}
	s.mu.Unlock()
	slices.SortFunc(infos, func(a, b blobstore.BlobInfo) int { return a.Ref.Compare(b.Ref) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Sync implements blobstore.Driver: RAM has no durability to wait for.
func (s *Store) Sync(ctx context.Context) error { return nil }

// Remove implements blobstore.Driver.
func (s *Store) Remove(ctx context.Context, ref blobstore.Ref) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[ref]; !ok {
		return notFound(ref)
	}
	delete(s.blobs, ref)
	return nil
}

// Corrupt lets a test damage a stored blob in place: fn receives a copy of
// the stored bytes and returns what the store holds from then on.
func (s *Store) Corrupt(ref blobstore.Ref, fn func([]byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	blob := s.blobs[ref]
	blob.data = fn(slices.Clone(blob.data))
	s.blobs[ref] = blob
}
