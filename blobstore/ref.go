// Package blobstore defines what a stored blob is called (Ref) and what a
// storage backend must do to hold blobs (Driver).
//
// A driver stores raw bytes under a ref. It does no encryption, no
// compression and no verification: the diskaccess package does all of that,
// once, above every driver.
package blobstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// RefSize is the length of a Ref in bytes.
const RefSize = sha256.Size

// Ref names a blob: the SHA-256 of its plaintext. It is a comparable value,
// usable as a map key.
type Ref [RefSize]byte

// RefOf returns the ref of content held in memory.
func RefOf(content []byte) Ref {
	return Ref(sha256.Sum256(content))
}

// ParseRef parses 64 lowercase hexadecimal characters. Anything else,
// including uppercase hex, is an error: a ref has exactly one spelling, so
// that a file name and a ref compare equal as strings too.
func ParseRef(s string) (Ref, error) {
	var ref Ref
	if len(s) != 2*RefSize {
		return ref, fmt.Errorf("not a ref: %q has %d characters, want %d lowercase hex", truncate(s), len(s), 2*RefSize)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ref, fmt.Errorf("not a ref: %q has %q at position %d, want lowercase hex", truncate(s), c, i)
		}
	}
	if _, err := hex.Decode(ref[:], []byte(s)); err != nil {
		return ref, fmt.Errorf("not a ref: %w", err)
	}
	return ref, nil
}

// String returns the 64 lowercase hex characters of the ref.
func (r Ref) String() string {
	return hex.EncodeToString(r[:])
}

// IsZero reports whether r is the zero value, which names no content.
func (r Ref) IsZero() bool {
	return r == Ref{}
}

// Compare orders refs by their bytes, which is also the order of their
// strings: -1 if r sorts before other, 0 if equal, +1 after.
func (r Ref) Compare(other Ref) int {
	return bytes.Compare(r[:], other[:])
}

// MarshalText implements encoding.TextMarshaler.
func (r Ref) MarshalText() ([]byte, error) {
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Ref) UnmarshalText(text []byte) error {
	parsed, err := ParseRef(string(text))
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
