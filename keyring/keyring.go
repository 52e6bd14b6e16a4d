// Package keyring handles stofuse's keys, in two levels.
//
// A store has one random root key, kept only inside the root Envelope:
// sealed once per key-encryption key (KEK) that may open the store, one
// slot each. A KEK comes from a key file (32 random bytes) or from a
// passphrase stretched with argon2id; it is never stored at all, so adding
// or removing a KEK rewrites only the root envelope. Each collection has a
// random data key (DEK) that seals its blobs, kept only inside the
// collection's Envelope, sealed with the root key. Keys are unlocked once,
// at mount time or when a command starts: the root envelope with a KEK,
// then every collection's envelope with the root key, into a Ring.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// KeySize is the size of every key in bytes: AES-256.
const KeySize = 32

// ErrWrongKey: the KEK opens none of the store's envelopes.
var ErrWrongKey = errors.New("wrong key")

// Kind says where a KEK came from; it is recorded (public) in each slot so
// that a command knows whether to ask for a passphrase.
type Kind string

const (
	KindKeyFile    Kind = "key-file"
	KindPassphrase Kind = "passphrase"
	// KindRoot is a store's root key: random, kept only in the root
	// envelope, it seals the collections' data keys.
	KindRoot Kind = "root"
)

// KEK is a key-encryption key.
type KEK struct {
	key  [KeySize]byte
	kind Kind
	id   string
}

func newKEK(key [KeySize]byte, kind Kind) *KEK {
	sum := sha256.Sum256(append([]byte("stofuse kek fingerprint v1\x00"), key[:]...))
	return &KEK{key: key, kind: kind, id: hex.EncodeToString(sum[:8])}
}

// NewRootKey returns a new random root key and its raw bytes, which the
// caller seals into the root envelope.
func NewRootKey() (*KEK, []byte, error) {
	var key [KeySize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, nil, err
	}
	return newKEK(key, KindRoot), key[:], nil
}

// RootKeyFromBytes turns a root key opened from the root envelope back into
// a KEK.
func RootKeyFromBytes(raw []byte) (*KEK, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("keyring: root key has %d bytes, want %d", len(raw), KeySize)
	}
	return newKEK([KeySize]byte(raw), KindRoot), nil
}

// ID is the KEK's fingerprint: 16 hex characters that name it without
// revealing it.
func (k *KEK) ID() string { return k.id }

// Kind says whether the KEK came from a key file or a passphrase.
func (k *KEK) Kind() Kind { return k.kind }

func (k *KEK) aead() cipher.AEAD {
	block, err := aes.NewCipher(k.key[:])
	if err != nil {
		panic(err) // the key size is fixed
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// NewDataKey returns a new random DEK and its id.
func NewDataKey() (keyID string, dek []byte, err error) {
	dek = make([]byte, KeySize)
	id := make([]byte, 8)
	if _, err := rand.Read(dek); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(id); err != nil {
		return "", nil, err
	}
	return "dek-" + hex.EncodeToString(id), dek, nil
}

// Envelope holds one DEK, sealed once per KEK that may open it.
type Envelope struct {
	KeyID string `json:"key_id"`
	Slots []Slot `json:"slots"`
}

// Slot is the DEK sealed with AES-256-GCM under one KEK.
type Slot struct {
	KEKID  string `json:"kek_id"`
	Kind   Kind   `json:"kind"`
	Nonce  []byte `json:"nonce"`
	Sealed []byte `json:"sealed"`
}

// slotAAD binds a slot to the DEK's id and the KEK's id, so a slot cannot be
// moved to another envelope.
func slotAAD(keyID, kekID string) []byte {
	return []byte("stofuse dek v1\x00" + keyID + "\x00" + kekID)
}

// Seal returns an envelope of dek with one slot per KEK.
func Seal(keyID string, dek []byte, keks ...*KEK) (*Envelope, error) {
	if len(dek) != KeySize {
		return nil, fmt.Errorf("keyring: data key has %d bytes, want %d", len(dek), KeySize)
	}
	env := &Envelope{KeyID: keyID}
	for _, kek := range keks {
		if err := env.AddSlot(dek, kek); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// AddSlot seals dek under kek into a new slot. Adding a KEK that already
// has a slot does nothing.
func (e *Envelope) AddSlot(dek []byte, kek *KEK) error {
	if e.HasSlot(kek.ID()) {
		return nil
	}
	aead := kek.aead()
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := aead.Seal(nil, nonce, dek, slotAAD(e.KeyID, kek.ID()))
	e.Slots = append(e.Slots, Slot{KEKID: kek.ID(), Kind: kek.Kind(), Nonce: nonce, Sealed: sealed})
	return nil
}

// HasSlot reports whether a KEK with the given id has a slot.
func (e *Envelope) HasSlot(kekID string) bool {
	return slices.ContainsFunc(e.Slots, func(s Slot) bool { return s.KEKID == kekID })
}

// Open returns the DEK, or an ErrWrongKey error if kek has no slot or its
// slot does not open.
func (e *Envelope) Open(kek *KEK) ([]byte, error) {
	for _, slot := range e.Slots {
		if slot.KEKID != kek.ID() {
			continue
		}
		dek, err := kek.aead().Open(nil, slot.Nonce, slot.Sealed, slotAAD(e.KeyID, slot.KEKID))
		if err != nil || len(dek) != KeySize {
			return nil, fmt.Errorf("key %s: the slot for KEK %s does not open: %w", e.KeyID, kek.ID(), ErrWrongKey)
		}
		return dek, nil
	}
	return nil, fmt.Errorf("key %s has no slot for KEK %s: %w", e.KeyID, kek.ID(), ErrWrongKey)
}

// Ring holds unlocked DEKs by id. It implements diskaccess.KeyRing.
type Ring struct {
	mu   sync.RWMutex // guards keys
	keys map[string][]byte
}

// NewRing returns an empty ring.
func NewRing() *Ring { return &Ring{keys: make(map[string][]byte)} }

// Add puts a DEK in the ring.
func (r *Ring) Add(keyID string, dek []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[keyID] = slices.Clone(dek)
}

// ErrKeyNotInRing is what DataKey returns for a key it does not hold; the
// metadata store wraps it as diskaccess.ErrKeyNotAvailable.
var ErrKeyNotInRing = errors.New("key not unlocked")

// DataKey returns the DEK with the given id.
func (r *Ring) DataKey(keyID string) ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	dek, ok := r.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", keyID, ErrKeyNotInRing)
	}
	return dek, nil
}

// Len is the number of keys in the ring.
func (r *Ring) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.keys)
}
