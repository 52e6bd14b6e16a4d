package badger

import (
	"context"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/keyring"
)

// KeyExport is everything that makes a store's blobs readable given a
// KEK, and nothing readable without one: the root envelope (the root key
// sealed once per KEK), the argon2id parameters, and each collection with
// its envelope (its data key sealed with the root key). It is what a
// volume keeps beside its blobs, so that the volume and a key are enough
// to recover the store.
type KeyExport struct {
	KDF         *keyring.KDFParams `json:"kdf,omitempty"`
	Root        *keyring.Envelope  `json:"root"`
	Collections []CollectionExport `json:"collections"`
}

// CollectionExport is a collection and the envelope of its data key.
type CollectionExport struct {
	Collection
	Envelope *keyring.Envelope `json:"envelope"`
}

// ExportKeys returns the store's envelopes; no key is needed.
func (s *Store) ExportKeys(ctx context.Context) (*KeyExport, error) {
	var out KeyExport
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		if out.Root, err = getEnvelope(txn, rootKeyID); err != nil {
			return err
		}
		var kdf keyring.KDFParams
		switch err := getJSON(txn, stringKey(prefixSetting, "kdf"), "kdf parameters", &kdf); {
		case err == nil:
			out.KDF = &kdf
		case !isNotExist(err):
			return err
		}
		return eachJSON(txn, prefixCollection, func(c *Collection) error {
			env, err := getEnvelope(txn, c.KeyID)
			if err != nil {
				return err
			}
			exported := CollectionExport{Collection: *c, Envelope: env}
			exported.FolderIno = 0 // the tree's business, restored from snapshots
			out.Collections = append(out.Collections, exported)
			return nil
		})
	})
	return &out, err
}

// ErrInitialized: ImportKeys into a store that has keys already.
var ErrInitialized = errors.New("the store has keys already")

// ImportKeys makes an empty store hold exported envelopes (recovery). The
// store stays locked until Unlock; an initialized store is refused.
func (s *Store) ImportKeys(ctx context.Context, keys *KeyExport) error {
	if keys.Root == nil || keys.Root.KeyID != rootKeyID {
		return fmt.Errorf("import keys: no root envelope: %w", errBadRecord)
	}
	return s.updateDurable(func(txn *badgerdb.Txn) error {
		if found, err := exists(txn, stringKey(prefixEnvelope, rootKeyID)); err != nil || found {
			if err == nil {
				err = ErrInitialized
			}
			return err
		}
		if keys.KDF != nil {
			if err := putJSON(txn, stringKey(prefixSetting, "kdf"), keys.KDF); err != nil {
				return err
			}
		}
		for _, c := range keys.Collections {
			if err := validCollectionName(c.Name); err != nil || c.Envelope == nil || c.Envelope.KeyID != c.KeyID {
				return fmt.Errorf("import keys: collection %q: %w", c.Name, errBadRecord)
			}
			if err := putJSON(txn, stringKey(prefixEnvelope, c.KeyID), c.Envelope); err != nil {
				return err
			}
			if err := putJSON(txn, stringKey(prefixCollection, c.Name), c.Collection); err != nil {
				return err
			}
		}
		return putJSON(txn, stringKey(prefixEnvelope, rootKeyID), keys.Root)
	})
}

// OnKeysChanged sets fn to be called after a change to the envelopes
// commits (a collection made, a KEK added), so that the caller can copy
// them to the volumes before anything is sealed with a new key; its error
// is the change's (which stays made). Set it once, before the store is
// shared.
func (s *Store) OnKeysChanged(fn func() error) { s.keysChanged = fn }

func (s *Store) notifyKeysChanged() error {
	if s.keysChanged == nil {
		return nil
	}
	if err := s.keysChanged(); err != nil {
		return fmt.Errorf("the keys changed, but could not be written to the volumes: %w", err)
	}
	return nil
}
