package store

import (
	"context"
	"fmt"

	"github.com/stofuse/stofuse/keyring"
	"github.com/stofuse/stofuse/metastore/badger"
)

// A Key opens a store: a KEK (a key file's), or a passphrase, which is
// stretched with the store's own argon2id parameters.
type Key struct {
	kek        *keyring.KEK
	passphrase []byte
}

// KEK is a key made from a key-encryption key (keyring.LoadKeyFile).
func KEK(kek *keyring.KEK) Key { return Key{kek: kek} }

// Passphrase is a key made from a passphrase.
func Passphrase(passphrase []byte) Key { return Key{passphrase: passphrase} }

// kek resolves key to a KEK. A passphrase for a store that never had one
// is ErrNoPassphrase.
func (s *Store) kek(ctx context.Context, key Key) (*keyring.KEK, error) {
	if key.kek != nil {
		return key.kek, nil
	}
	params, err := s.meta.KDFParams(ctx)
	if err != nil {
		return nil, err
	}
	if params == nil {
		return nil, ErrNoPassphrase
	}
	return keyring.FromPassphrase(key.passphrase, *params)
}

// Unlock opens the store's data keys with key. A key that does not open
// the store is an error wrapping keyring.ErrWrongKey.
func (s *Store) Unlock(ctx context.Context, key Key) error {
	kek, err := s.kek(ctx, key)
	if err != nil {
		return err
	}
	return s.meta.Unlock(ctx, kek)
}

// CheckKey checks, without unlocking anything, that key opens the store
// (an open store lent to a client checks the client's key this way). A
// key that does not is an error wrapping keyring.ErrWrongKey.
func (s *Store) CheckKey(ctx context.Context, key Key) error {
	kek, err := s.kek(ctx, key)
	if err != nil {
		return err
	}
	infos, err := s.meta.KEKs(ctx)
	if err != nil {
		return err
	}
	for _, info := range infos {
		if info.ID == kek.ID() {
			return nil
		}
	}
	return fmt.Errorf("this %s (fingerprint %s) does not open the store: %w", kek.Kind(), kek.ID(), keyring.ErrWrongKey)
}

// HasPassphrase reports whether the store was ever sealed with a
// passphrase.
func (s *Store) HasPassphrase(ctx context.Context) (bool, error) {
	params, err := s.meta.KDFParams(ctx)
	return params != nil, err
}

// AddKey lets another key file's KEK open the store.
func (s *Store) AddKey(ctx context.Context, kek *keyring.KEK) error {
	return s.meta.AddKEK(ctx, kek, nil)
}

// AddPassphrase lets a passphrase open the store, stretched with the
// store's argon2id parameters (one set per store), or new ones if it has
// none yet. It returns the passphrase's KEK.
func (s *Store) AddPassphrase(ctx context.Context, passphrase []byte) (*keyring.KEK, error) {
	params, err := s.meta.KDFParams(ctx)
	if err != nil {
		return nil, err
	}
	if params == nil {
		fresh, err := keyring.NewKDFParams()
		if err != nil {
			return nil, err
		}
		params = &fresh
	}
	kek, err := keyring.FromPassphrase(passphrase, *params)
	if err != nil {
		return nil, err
	}
	return kek, s.meta.AddKEK(ctx, kek, params)
}

// Keys lists the fingerprints and kinds of the KEKs that open the store.
func (s *Store) Keys(ctx context.Context) ([]badger.KEKInfo, error) { return s.meta.KEKs(ctx) }

// NewPassphraseKEK makes the KEK of a new store's passphrase, with new
// argon2id parameters (for Create).
func NewPassphraseKEK(passphrase []byte) (*keyring.KEK, *keyring.KDFParams, error) {
	params, err := keyring.NewKDFParams()
	if err != nil {
		return nil, nil, err
	}
	kek, err := keyring.FromPassphrase(passphrase, params)
	return kek, &params, err
}

// Collection returns the named collection, or a *NotFoundError.
func (s *Store) Collection(ctx context.Context, name string) (*badger.Collection, error) {
	c, err := s.meta.Collection(ctx, name)
	if err != nil {
		return nil, &NotFoundError{What: "collection", Name: name}
	}
	return c, nil
}

// Collections lists the store's collections.
func (s *Store) Collections(ctx context.Context) ([]*badger.Collection, error) {
	return s.meta.Collections(ctx)
}

// CreateCollection makes a new collection with its own data key; the
// store must be unlocked.
func (s *Store) CreateCollection(ctx context.Context, name string) (*badger.Collection, error) {
	if _, err := s.meta.Collection(ctx, name); err == nil {
		return nil, invalidf("there is a collection %q already", name)
	}
	return s.meta.CreateCollection(ctx, name)
}
