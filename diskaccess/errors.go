package diskaccess

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/stofuse/stofuse/blobstore"
)

var (
	// ErrVolumeDescriptorNotFound: the volume holds no descriptor, so it was
	// never initialized, or it is not the disk it is supposed to be.
	ErrVolumeDescriptorNotFound = errors.New("volume descriptor not found")
	// ErrVolumeAlreadyInitialized: Initialize found a descriptor.
	ErrVolumeAlreadyInitialized = errors.New("volume already initialized")
	// ErrWrongVolume: the descriptor names another volume UUID.
	ErrWrongVolume = errors.New("volume descriptor names a different volume")
	// ErrAlreadyMounted: Mount of a volume id that is mounted.
	ErrAlreadyMounted = errors.New("volume already mounted")
	// ErrNotMounted: an operation needs a volume that is not mounted.
	ErrNotMounted = errors.New("volume not mounted")
	// ErrRefMismatch: content given to WriteBlob does not hash to its ref.
	ErrRefMismatch = errors.New("content does not match its ref")
	// ErrRemovedWhileWritten: a BlobWriter found its blob stored when it
	// began, so it sealed nothing, and a garbage collection removed the
	// blob before the commit: nothing was stored; write the content again
	// (a new BlobWriter stores it anew).
	ErrRemovedWhileWritten = errors.New("the blob was removed while it was written, so it was not stored")
	// ErrKeyNotAvailable: the blob's data key is not in the caller's ring.
	ErrKeyNotAvailable = errors.New("encryption key not available")
	// ErrCorrupt is matched (errors.Is) by every *CorruptBlobError.
	ErrCorrupt = errors.New("blob is corrupt")
)

// Region names the part of a stored blob where damage was found.
type Region string

const (
	RegionHeader  Region = "header"
	RegionFrame   Region = "frame"
	RegionIndex   Region = "index"
	RegionFooter  Region = "footer"
	RegionContent Region = "content" // frames authentic, but the plaintext does not hash to the ref
	RegionWhole   Region = "stored bytes"
)

// CorruptBlobError reports a blob whose stored bytes are damaged, forged,
// or sealed with another key: authentication or a checksum failed. Frame is
// the damaged frame's number (from 0), or -1 when the damage is not in one
// frame. errors.Is(err, ErrCorrupt) holds for it.
type CorruptBlobError struct {
	Ref    blobstore.Ref
	Volume int
	Region Region
	Frame  int
	Err    error
}

func (e *CorruptBlobError) Error() string {
	if errors.Is(e.Err, ErrMissing) {
		return fmt.Sprintf("blob %s on volume %d is missing: %v", e.Ref, e.Volume, e.Err)
	}
	where := string(e.Region)
	if e.Frame >= 0 {
		where = fmt.Sprintf("frame %d", e.Frame)
	}
	return fmt.Sprintf("blob %s on volume %d is corrupt (%s): %v", e.Ref, e.Volume, where, e.Err)
}

func (e *CorruptBlobError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true for every CorruptBlobError.
func (e *CorruptBlobError) Is(target error) bool { return target == ErrCorrupt }

// OtherBlobError: a copy's stored bytes are whole (their frames, index
// and footer match their own checksums) but they are another blob's, Blob's,
// whose recorded stored size and CRC-32C they have (misplaced, or swapped
// with Blob's copy). Confirmed is set when Blob's data key opens them as
// Blob's; without a key the size and CRC-32C are the evidence. It comes
// wrapped in a *CorruptBlobError of the copy's own ref, Region
// RegionWhole.
type OtherBlobError struct {
	Blob      blobstore.Ref
	CRC       []byte // the stored bytes' CRC-32C, 4 bytes BE
	Want      []byte // the CRC-32C recorded for the copy's own blob
	Confirmed bool
}

func (e *OtherBlobError) Error() string {
	how := fmt.Sprintf("they have its stored size and CRC-32C (%x; this blob's is %x)", e.CRC, e.Want)
	if e.Confirmed {
		how = "its key opens them as its own"
	}
	return fmt.Sprintf("they are blob %s's, not this blob's: %s", e.Blob, how)
}

// NotOnVolumeError: the metadata does not list the blob on the volume asked
// for. It satisfies errors.Is(err, fs.ErrNotExist).
type NotOnVolumeError struct {
	Ref     blobstore.Ref
	Volume  int
	Volumes []int // where the blob is
}

func (e *NotOnVolumeError) Error() string {
	return fmt.Sprintf("blob %s is not on volume %d (it is on %v)", e.Ref, e.Volume, e.Volumes)
}

func (e *NotOnVolumeError) Is(target error) bool { return target == fs.ErrNotExist }

// CopyError is a copy of stored bytes (Replicate, Repair) that failed on
// one side, for another reason than damage: reading the source's copy
// (Source), or storing on the target.
type CopyError struct {
	Ref    blobstore.Ref
	Volume int  // the side that failed
	Source bool // the source's read failed; else the target's store
	Err    error
}

func (e *CopyError) Error() string {
	side := "storing it on"
	if e.Source {
		side = "reading it from"
	}
	return fmt.Sprintf("copying blob %s: %s volume %d: %v", e.Ref, side, e.Volume, e.Err)
}

func (e *CopyError) Unwrap() error { return e.Err }

// missingError: the metadata lists the blob on a volume that has lost it.
// That is damage, not "not found".
func missingError(ref blobstore.Ref, volume int) error {
	return &CorruptBlobError{Ref: ref, Volume: volume, Region: RegionWhole, Frame: -1,
		Err: ErrMissing}
}

// ErrMissing: the volume should hold the blob (its metadata says so) but
// does not. It comes wrapped in a *CorruptBlobError.
var ErrMissing = errors.New("the metadata lists it, but the volume does not hold it")

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
