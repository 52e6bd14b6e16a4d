// Package diskaccesstest holds what tests of diskaccess and of its
// metadata stores share: an in-memory MetadataStore, a static KeyRing, and
// the Controller suite every MetadataStore implementation runs.
package diskaccesstest

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sync"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// KeyRing is a diskaccess.KeyRing over a map from key id to data key.
type KeyRing map[string][]byte

// DataKey implements diskaccess.KeyRing.
func (k KeyRing) DataKey(keyId string) ([]byte, error) {
	key, ok := k[keyId]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", keyId, diskaccess.ErrKeyNotAvailable)
	}
	return key, nil
}

// MemoryStore is an in-memory diskaccess.MetadataStore for unit tests.
type MemoryStore struct {
	mu          sync.Mutex // guards the maps
	blobs       map[blobstore.Ref]diskaccess.BlobMeta
	collections map[string]string // collection id -> key id
	keys        KeyRing           // the data keys of new blobs
}

var _ diskaccess.MetadataStore = (*MemoryStore)(nil)

// NewMemoryStore returns a store with one collection, collId, whose new
// blobs are sealed with key (id keyId).
func NewMemoryStore(collId, keyId string, key []byte) *MemoryStore {
	return &MemoryStore{
		blobs:       make(map[blobstore.Ref]diskaccess.BlobMeta),
		collections: map[string]string{collId: keyId},
		keys:        KeyRing{keyId: key},
	}
}

func (m *MemoryStore) get(ref blobstore.Ref) (diskaccess.BlobMeta, error) {
	meta, ok := m.blobs[ref]
	if !ok {
		return meta, fmt.Errorf("blob %s: %w", ref, fs.ErrNotExist)
	}
	meta.Volumes = slices.Clone(meta.Volumes)
	meta.ExpectedCrc32 = slices.Clone(meta.ExpectedCrc32)
	return meta, nil
}

func (m *MemoryStore) QueryBlobMetadata(ctx context.Context, ref blobstore.Ref, keys diskaccess.KeyRing) (*diskaccess.BlobMeta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	meta, err := m.get(ref)
	if err != nil {
		return nil, err
	}
	if keys != nil {
		if key, err := keys.DataKey(meta.EncryptionKeyId); err == nil {
			meta.EncryptionKey = key
		}
	}
	return &meta, nil
}

func (m *MemoryStore) QueryBlobCrc32(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	meta, err := m.get(ref)
	return meta.ExpectedCrc32, err
}

func (m *MemoryStore) QueryBlobExists(ctx context.Context, ref blobstore.Ref) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blobs[ref]
	return ok, nil
}

func (m *MemoryStore) QueryCollectionEncryptionKeyForNewBlobs(ctx context.Context, collId string) (string, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keyId, ok := m.collections[collId]
	if !ok {
		return "", nil, fmt.Errorf("collection %q: %w", collId, fs.ErrNotExist)
	}
	key, err := m.keys.DataKey(keyId)
	return keyId, key, err
}

func (m *MemoryStore) WriteBlobCreated(ctx context.Context, meta *diskaccess.BlobMeta, volumeId int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.blobs[meta.Ref]; ok {
		return fmt.Errorf("blob %s is already recorded", meta.Ref)
	}
	stored := *meta
	stored.EncryptionKey = nil
	stored.Volumes = []int{volumeId}
	stored.ExpectedCrc32 = slices.Clone(meta.ExpectedCrc32)
	m.blobs[meta.Ref] = stored
	return nil
}

func (m *MemoryStore) WriteBlobReplicated(ctx context.Context, ref blobstore.Ref, volumeId int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	meta, ok := m.blobs[ref]
	if !ok {
		return fmt.Errorf("blob %s: %w", ref, fs.ErrNotExist)
	}
	if !slices.Contains(meta.Volumes, volumeId) {
		meta.Volumes = append(slices.Clone(meta.Volumes), volumeId)
		m.blobs[ref] = meta
	}
	return nil
}

var _ diskaccess.StoredBytesFinder = (*MemoryStore)(nil)

// BlobsStoredAs implements diskaccess.StoredBytesFinder.
func (m *MemoryStore) BlobsStoredAs(ctx context.Context, sizeOnDisk int64, crc []byte) ([]blobstore.Ref, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var refs []blobstore.Ref
	for ref, meta := range m.blobs {
		if meta.SizeOnDisk == sizeOnDisk && bytes.Equal(meta.ExpectedCrc32, crc) {
			refs = append(refs, ref)
		}
	}
	return refs, nil
}
