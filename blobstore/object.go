package blobstore

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Named objects are what a volume holds besides blobs: its descriptor, the
// key envelopes, the snapshot records. They live in a namespace of their
// own (see the PutObject family of Driver), never listed among blobs.
//
// A name is one or more segments separated by '/'. A segment is made of
// lowercase letters, digits, '.', '_' and '-', and starts with a letter or
// a digit (so no segment is "." or "..", and none looks like a driver's
// hidden temp file). A name is at most MaxObjectNameLen bytes. The rule
// is strict so that every driver can spell every name as it is.
const MaxObjectNameLen = 255

// ErrInvalidObjectName: a name that breaks the rule above. Drivers refuse
// it before any I/O.
var ErrInvalidObjectName = errors.New("invalid object name")

// ObjectInfo describes a stored named object, as ListObjects reports it.
type ObjectInfo struct {
	Name string
	// Size is the stored size in bytes.
	Size int64
	// ModTime is when the object was last stored, by the volume's clock
	// and to its resolution (see BlobInfo.ModTime).
	ModTime time.Time
}

// CheckObjectName returns nil for a valid name and an ErrInvalidObjectName
// error saying what is wrong otherwise.
func CheckObjectName(name string) error {
	if name == "" || len(name) > MaxObjectNameLen {
		return fmt.Errorf("%w %q: want 1 to %d bytes, not %d", ErrInvalidObjectName, truncate(name), MaxObjectNameLen, len(name))
	}
	for _, segment := range strings.Split(name, "/") {
		if err := checkSegment(segment); err != nil {
			return fmt.Errorf("%w %q: %s", ErrInvalidObjectName, name, err)
		}
	}
	return nil
}

func checkSegment(segment string) error {
	if segment == "" {
		return errors.New("an empty segment (a leading, trailing or doubled '/')")
	}
	if c := segment[0]; !isLowerAlnum(c) {
		return fmt.Errorf("segment %q starts with %q, want a lowercase letter or a digit", segment, c)
	}
	for i := 0; i < len(segment); i++ {
		if c := segment[i]; !isLowerAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("segment %q has %q, want only [a-z0-9._-]", segment, c)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// flatSeparator stands for '/' in a flat name: it is outside the name
// alphabet, safe in file names and S3 keys, and not special to a shell.
const flatSeparator = "+"

// FlatObjectName spells a valid name as a single path segment, each '/'
// written as '+', for a driver whose namespace cannot hold both "a" and
// "a/b" (a directory of files; S3 servers that keep objects as files). It
// keeps names distinct and keeps prefixes (a name starts with p exactly
// when its flat name starts with p's), but not their order: a driver
// sorts by the names themselves.
func FlatObjectName(name string) string {
	return strings.ReplaceAll(name, "/", flatSeparator)
}

// ObjectNameOfFlat undoes FlatObjectName. ok is false for anything that is
// not the flat spelling of a valid name (a temp file, a stray).
func ObjectNameOfFlat(flat string) (name string, ok bool) {
	if strings.Contains(flat, "/") {
		return "", false
	}
	name = strings.ReplaceAll(flat, flatSeparator, "/")
	return name, CheckObjectName(name) == nil
}
