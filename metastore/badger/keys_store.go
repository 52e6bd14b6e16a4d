package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/keyring"
)

// Keys are kept in two levels, as LUKS does:
//
//   - the root envelope (key id "root") holds the store's random root key,
//     with one slot per user KEK (key file or passphrase);
//   - each collection's envelope holds its data key, sealed under the root
//     key.
//
// So every user KEK opens every collection, including collections made
// later, and adding a KEK adds one slot. No key is stored unsealed.
const rootKeyID = "root"

// ErrNotInitialized: the store has no root key yet.
var ErrNotInitialized = errors.New("store is not initialized")

// ErrLocked: an operation needs the keys, and Unlock has not run.
var ErrLocked = errors.New("store keys are not unlocked")

// KEKInfo describes a KEK that can open the store, without revealing it.
type KEKInfo struct {
	ID   string       `json:"id"`
	Kind keyring.Kind `json:"kind"`
}

func putJSON(txn *badgerdb.Txn, key []byte, value any) error {
	body, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return txn.Set(key, body)
}

func getJSON(txn *badgerdb.Txn, key []byte, what string, value any) error {
	body, err := getCopy(txn, key, what)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, value); err != nil {
		return fmt.Errorf("%s is damaged: %w", what, err)
	}
	return nil
}

func getEnvelope(txn *badgerdb.Txn, keyID string) (*keyring.Envelope, error) {
	var env keyring.Envelope
	err := getJSON(txn, stringKey(prefixEnvelope, keyID), "key envelope "+keyID, &env)
	return &env, err
}

// IsInitialized reports whether the store has its root key.
func (s *Store) IsInitialized(ctx context.Context) (bool, error) {
	var found bool
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		found, err = exists(txn, stringKey(prefixEnvelope, rootKeyID))
		return err
	})
	return found, err
}

// Initialize creates the store's root key, sealed for kek, and records the
// argon2id parameters when kek came from a passphrase. The store is
// unlocked afterwards.
func (s *Store) Initialize(ctx context.Context, kek *keyring.KEK, kdf *keyring.KDFParams) error {
	_, raw, err := keyring.NewRootKey()
	if err != nil {
		return err
	}
	env, err := keyring.Seal(rootKeyID, raw, kek)
	if err != nil {
		return err
	}
	err = s.updateDurable(func(txn *badgerdb.Txn) error {
		if found, err := exists(txn, stringKey(prefixEnvelope, rootKeyID)); err != nil || found {
			if err == nil {
				err = errors.New("store is already initialized")
			}
			return err
		}
		if kdf != nil {
			if err := putJSON(txn, stringKey(prefixSetting, "kdf"), kdf); err != nil {
				return err
			}
		}
		return putJSON(txn, stringKey(prefixEnvelope, rootKeyID), env)
	})
	if err != nil {
		return err
	}
	s.setKeys(raw, keyring.NewRing())
	return nil
}

// KDFParams returns the store's argon2id parameters, or nil if no
// passphrase was ever set.
func (s *Store) KDFParams(ctx context.Context) (*keyring.KDFParams, error) {
	var p keyring.KDFParams
	err := s.view(func(txn *badgerdb.Txn) error {
		return getJSON(txn, stringKey(prefixSetting, "kdf"), "kdf parameters", &p)
	})
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// KEKs lists the KEKs that open the store.
func (s *Store) KEKs(ctx context.Context) ([]KEKInfo, error) {
	var env *keyring.Envelope
	err := s.view(func(txn *badgerdb.Txn) (err error) {
		env, err = getEnvelope(txn, rootKeyID)
		return err
	})
	if isNotExist(err) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, err
	}
	infos := make([]KEKInfo, 0, len(env.Slots))
	for _, slot := range env.Slots {
		infos = append(infos, KEKInfo{ID: slot.KEKID, Kind: slot.Kind})
	}
	return infos, nil
}

// Unlock opens the root key with kek and every collection's data key with
// the root key. A KEK that does not open the store is an error wrapping
// keyring.ErrWrongKey that lists the KEKs that would.
func (s *Store) Unlock(ctx context.Context, kek *keyring.KEK) error {
	var rootKey []byte
	ring := keyring.NewRing()
	err := s.view(func(txn *badgerdb.Txn) error {
		env, err := getEnvelope(txn, rootKeyID)
		if isNotExist(err) {
			return ErrNotInitialized
		}
		if err != nil {
			return err
		}
		if !env.HasSlot(kek.ID()) {
			return fmt.Errorf("this %s (fingerprint %s) does not open the store; it opens with %s: %w",
				kek.Kind(), kek.ID(), describeSlots(env.Slots), keyring.ErrWrongKey)
		}
		if rootKey, err = env.Open(kek); err != nil {
			return err
		}
		root, err := keyring.RootKeyFromBytes(rootKey)
		if err != nil {
			return err
		}
		return openCollectionKeys(txn, root, ring)
	})
	if err != nil {
		return err
	}
	s.setKeys(rootKey, ring)
	return nil
}

func describeSlots(slots []keyring.Slot) string {
	var parts []string
	for _, slot := range slots {
		parts = append(parts, fmt.Sprintf("%s %s", slot.Kind, slot.KEKID))
	}
	return fmt.Sprint(parts)
}

// openCollectionKeys opens every collection's envelope into ring.
func openCollectionKeys(txn *badgerdb.Txn, root *keyring.KEK, ring *keyring.Ring) error {
	return eachJSON(txn, prefixCollection, func(c *Collection) error {
		env, err := getEnvelope(txn, c.KeyID)
		if err != nil {
			return err
		}
		dek, err := env.Open(root)
		if err != nil {
			return fmt.Errorf("collection %q: %w", c.Name, err)
		}
		ring.Add(c.KeyID, dek)
		return nil
	})
}

// AddKEK adds a slot for kek to the root envelope, so that kek opens the
// store too. The store must be unlocked (with another KEK). kdf is recorded
// when kek is the store's first passphrase.
func (s *Store) AddKEK(ctx context.Context, kek *keyring.KEK, kdf *keyring.KDFParams) error {
	rootKey, _ := s.keys()
	if rootKey == nil {
		return ErrLocked
	}
	err := s.updateDurable(func(txn *badgerdb.Txn) error {
		env, err := getEnvelope(txn, rootKeyID)
		if err != nil {
			return err
		}
		if err := env.AddSlot(rootKey, kek); err != nil {
			return err
		}
		if kdf != nil {
			found, err := exists(txn, stringKey(prefixSetting, "kdf"))
			if err != nil {
				return err
			}
			if !found {
				if err := putJSON(txn, stringKey(prefixSetting, "kdf"), kdf); err != nil {
					return err
				}
			}
		}
		return putJSON(txn, stringKey(prefixEnvelope, rootKeyID), env)
	})
	if err != nil {
		return err
	}
	return s.notifyKeysChanged()
}

func (s *Store) setKeys(rootKey []byte, ring *keyring.Ring) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	s.rootKey, s.ring = rootKey, ring
}

// keys returns the raw root key and the ring; both nil while locked.
func (s *Store) keys() ([]byte, *keyring.Ring) {
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	return s.rootKey, s.ring
}

// rootKEK returns the root key as a KEK, or ErrLocked.
func (s *Store) rootKEK() (*keyring.KEK, error) {
	rootKey, _ := s.keys()
	if rootKey == nil {
		return nil, ErrLocked
	}
	return keyring.RootKeyFromBytes(rootKey)
}

// Ring returns the unlocked data keys (nil before Unlock or Initialize).
// It implements diskaccess.KeyRing.
func (s *Store) Ring() *keyring.Ring {
	_, ring := s.keys()
	return ring
}
