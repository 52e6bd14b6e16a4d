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

	"github.com/stofuse/stofuse/blobstore"
)

// Store is an in-memory blobstore.Driver.
type Store struct {
	cost       int
	properties blobstore.Properties

	mu    sync.Mutex // guards blobs
	blobs map[blobstore.Ref][]byte
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
	s := &Store{cost: routingCost, blobs: make(map[blobstore.Ref][]byte)}
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
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, content); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[ref] = buf.Bytes()
	return nil
}

func (s *Store) get(ref blobstore.Ref) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	blob, ok := s.blobs[ref]
	if !ok {
		return nil, notFound(ref)
	}
	return blob, nil
}

// RawFetch implements blobstore.Driver.
func (s *Store) RawFetch(ctx context.Context, ref blobstore.Ref) (io.ReadCloser, error) {
	blob, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(blob)), nil
}

// RawOpen implements blobstore.RandomAccessDriver.
func (s *Store) RawOpen(ctx context.Context, ref blobstore.Ref) (blobstore.RawReaderAt, error) {
	blob, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	return readerAt{bytes.NewReader(blob)}, nil
}

type readerAt struct{ *bytes.Reader }

func (readerAt) Close() error { return nil }

// Stat implements blobstore.Driver.
func (s *Store) Stat(ctx context.Context, ref blobstore.Ref) (int64, error) {
	blob, err := s.get(ref)
	if err != nil {
		return 0, err
	}
	return int64(len(blob)), nil
}

// List implements blobstore.Driver.
func (s *Store) List(ctx context.Context, fn func(blobstore.Ref, int64) error) error {
	s.mu.Lock()
	refs := make([]blobstore.Ref, 0, len(s.blobs))
	sizes := make(map[blobstore.Ref]int64, len(s.blobs))
	for ref, blob := range s.blobs {
		refs = append(refs, ref)
		sizes[ref] = int64(len(blob))
	}
	s.mu.Unlock()
	slices.SortFunc(refs, blobstore.Ref.Compare)
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ref, sizes[ref]); err != nil {
			return err
		}
	}
	return nil
}

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
	s.blobs[ref] = fn(slices.Clone(s.blobs[ref]))
}
