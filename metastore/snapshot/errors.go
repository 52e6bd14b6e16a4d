// Package snapshot encodes a collection's files/ tree as a Merkle tree of
// content-addressed blobs, and reads, looks up and compares such trees.
//
// One directory's listing is one tree blob, or, when it is large, a small
// B-tree of them: leaf blobs of consecutive entries and index blobs that
// name their children by first name. Boundaries between blobs are chosen
// from the entries' names (content-defined), so an edit changes only the
// blobs around it and every blob a snapshot shares with the one before is
// stored once. A snapshot Record names a collection's root tree.
//
// The package is a pure codec: it produces and parses plaintext bytes and
// computes their refs (blobstore.RefOf). Callers seal, store and fetch the
// blobs (diskaccess.WriteBlob, Fetch) through the Emit and Loader
// functions they pass in. Everything read back is treated as untrusted:
// each blob must hash to the ref it was loaded under, and sizes, order and
// counts are checked before they are used. docs/format.md ("Snapshot
// trees") describes the bytes.
package snapshot

import (
	"errors"
	"fmt"

	"github.com/stofuse/stofuse/blobstore"
)

var (
	// ErrCorrupt marks bytes that are not a valid tree blob or record:
	// damaged, forged, or handed back for the wrong ref. Errors wrapping it
	// say what is wrong.
	ErrCorrupt = errors.New("corrupt snapshot data")

	// ErrUnsupported marks well-formed data that this version cannot read
	// faithfully: a newer format version, an unknown entry kind, or an
	// unknown field that is marked as one a reader must understand.
	ErrUnsupported = errors.New("snapshot data written by a newer format")

	// ErrInvalid marks an entry or record that cannot be encoded: a bad
	// name, fields that do not belong to its kind, or names out of order.
	ErrInvalid = errors.New("invalid snapshot input")
)

// TreeError is a finding about one loaded tree blob: it carries the ref
// under which the blob was loaded, so that a caller can name it (log it,
// repair it from another volume).
type TreeError struct {
	Ref blobstore.Ref
	Err error // wraps ErrCorrupt, ErrUnsupported or the loader's error
}

// Error names the blob and what is wrong with it.
func (e *TreeError) Error() string {
	return fmt.Sprintf("tree blob %s: %v", e.Ref, e.Err)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *TreeError) Unwrap() error { return e.Err }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsupported)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}
