package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/keyring"
)

// Collection groups blobs sealed with one data key.
type Collection struct {
	Name    string    `json:"name"`
	KeyID   string    `json:"key_id"`
	Created time.Time `json:"created"`
}

// ErrCollectionExists: CreateCollection of a name in use.
var ErrCollectionExists = errors.New("collection already exists")

// CreateCollection makes a collection with a new data key, sealed under the
// root key. The store must be unlocked.
func (s *Store) CreateCollection(ctx context.Context, name string) (*Collection, error) {
	if name == "" {
		return nil, errors.New("collection name is empty")
	}
	root, err := s.rootKEK()
	if err != nil {
		return nil, err
	}
	keyID, dek, err := keyring.NewDataKey()
	if err != nil {
		return nil, err
	}
	env, err := keyring.Seal(keyID, dek, root)
	if err != nil {
		return nil, err
	}
	c := &Collection{Name: name, KeyID: keyID, Created: time.Now().UTC()}
	err = s.update(func(txn *badgerdb.Txn) error {
		if found, err := exists(txn, stringKey(prefixCollection, name)); err != nil || found {
			if err == nil {
				err = fmt.Errorf("%q: %w", name, ErrCollectionExists)
			}
			return err
		}
		if err := putJSON(txn, stringKey(prefixEnvelope, keyID), env); err != nil {
			return err
		}
		return putJSON(txn, stringKey(prefixCollection, name), c)
	})
	if err != nil {
		return nil, err
	}
	s.Ring().Add(keyID, dek)
	return c, nil
}

// Collection returns the named collection, or an fs.ErrNotExist error.
func (s *Store) Collection(ctx context.Context, name string) (*Collection, error) {
	var c Collection
	err := s.view(func(txn *badgerdb.Txn) error {
		return getJSON(txn, stringKey(prefixCollection, name), fmt.Sprintf("collection %q", name), &c)
	})
	return &c, err
}

// Collections lists all collections by name.
func (s *Store) Collections(ctx context.Context) ([]*Collection, error) {
	var all []*Collection
	err := s.view(func(txn *badgerdb.Txn) error {
		return eachJSON(txn, prefixCollection, func(c *Collection) error {
			all = append(all, c)
			return nil
		})
	})
	return all, err
}

// QueryCollectionEncryptionKeyForNewBlobs implements
// diskaccess.MetadataStore.
func (s *Store) QueryCollectionEncryptionKeyForNewBlobs(ctx context.Context, collId string) (string, []byte, error) {
	c, err := s.Collection(ctx, collId)
	if err != nil {
		return "", nil, err
	}
	ring := s.Ring()
	if ring == nil {
		return "", nil, fmt.Errorf("collection %q: %w", collId, diskaccess.ErrKeyNotAvailable)
	}
	key, err := ring.DataKey(c.KeyID)
	if err != nil {
		return "", nil, fmt.Errorf("collection %q: %w (%v)", collId, diskaccess.ErrKeyNotAvailable, err)
	}
	return c.KeyID, key, nil
}

// eachJSON decodes every value under a one-byte prefix into a new T.
func eachJSON[T any](txn *badgerdb.Txn, prefix byte, fn func(*T) error) error {
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefix}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		body, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		value := new(T)
		if err := json.Unmarshal(body, value); err != nil {
			return fmt.Errorf("record %q is damaged: %w", it.Item().Key(), err)
		}
		if err := fn(value); err != nil {
			return err
		}
	}
	return nil
}
