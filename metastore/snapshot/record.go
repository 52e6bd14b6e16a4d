package snapshot

import (
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stofuse/stofuse/blobstore"
)

// A record is a header and a list of fields (as an entry's):
//
//	magic "sfsnap" | version 1 | fields
//
// docs/format.md ("Snapshot records") has the tags.
const (
	recordMagic   = "sfsnap"
	recordVersion = 1
	// MaxRecordSize bounds an encoded record a reader accepts.
	MaxRecordSize = 64 << 10
	// maxWriter bounds the Writer string.
	maxWriter = 255
)

// Record field tags.
const (
	tagRecordTime      = 0x01
	tagRecordRoot      = 0x02
	tagRecordParent    = 0x03
	tagRecordParentRef = 0x04
	tagRecordWriter    = 0x05
	tagRecordIndex     = 0x06
	recordRequired     = 1<<tagRecordTime | 1<<tagRecordRoot
)

// Record is one snapshot of a collection: when it was taken, the
// collection's folder with the root tree ref of its listing, and the
// snapshot before it, so that a volume's records form a chain per
// collection that recovery can follow and check.
type Record struct {
	// Time is when the snapshot was taken, to the nanosecond; it names the
	// record (RecordName) and must be in years 1..9999.
	Time time.Time
	// Root is the collection's folder files/<collection> as a directory
	// entry: Name is the collection's name, Ref the root tree ref, and
	// Ino, Mode, UID, GID and times the folder's own.
	Root Entry
	// Parent is the name of the collection's previous record, "" for the
	// first; ParentRef is the ref of that record's encoding, zero exactly
	// when Parent is "". A parent is always older than its child.
	Parent    string
	ParentRef blobstore.Ref
	// Writer names the program that wrote the record ("stofuse 0.4.0"),
	// for diagnostics only: printable UTF-8, at most 255 bytes, or "".
	Writer string
	// Index is the newest segment of the collection's blob index as of
	// this snapshot (index.go), zero if none was written.
	Index blobstore.Ref
}

// Collection returns the name of the collection the record is a snapshot
// of.
func (r *Record) Collection() string { return r.Root.Name }

// Validate checks that r can be encoded. Errors wrap ErrInvalid.
func (r *Record) Validate() error {
	if _, err := RecordName(r.Time); err != nil {
		return err
	}
	if err := r.Root.Validate(); err != nil {
		return err
	}
	if r.Root.Kind != KindDir {
		return invalid("record of %q: the root is a %s, not a directory", r.Root.Name, r.Root.Kind)
	}
	if (r.Parent == "") != r.ParentRef.IsZero() {
		return invalid("record of %q: a parent name needs a parent ref and the other way round", r.Root.Name)
	}
	if r.Parent != "" {
		parentTime, err := ParseRecordName(r.Parent)
		if err != nil {
			return err
		}
		if !parentTime.Before(r.Time) {
			return invalid("record %s has a parent %s that is not older", r.Time.UTC().Format(nameLayout), r.Parent)
		}
	}
	if len(r.Writer) > maxWriter || !utf8.ValidString(r.Writer) || containsNonPrint(r.Writer) {
		return invalid("record writer %q: not printable UTF-8 of at most %d bytes", truncateName(r.Writer), maxWriter)
	}
	return nil
}

func containsNonPrint(s string) bool {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return true
		}
	}
	return false
}

// EncodeRecord returns the canonical encoding of r: equal records give
// equal bytes, so a record's ref names it. Errors wrap ErrInvalid.
func EncodeRecord(r *Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b := append([]byte(recordMagic), recordVersion)
	b = appendTimeField(b, tagRecordTime, r.Time)
	root, err := appendEntry(nil, &r.Root)
	if err != nil {
		return nil, err
	}
	_, n, _ := readUvarint(root) // the field holds the entry without its length prefix
	b = appendBytesField(b, tagRecordRoot, root[n:])
	if r.Parent != "" {
		b = appendField(b, tagRecordParent, r.Parent)
		b = appendBytesField(b, tagRecordParentRef, r.ParentRef[:])
	}
	if r.Writer != "" {
		b = appendField(b, tagRecordWriter, r.Writer)
	}
	if !r.Index.IsZero() {
		b = appendBytesField(b, tagRecordIndex, r.Index[:])
	}
	return b, nil
}

// DecodeRecord parses an encoded record. Errors wrap ErrCorrupt, or
// ErrUnsupported for a record from a newer format.
func DecodeRecord(b []byte) (*Record, error) {
	switch {
	case len(b) > MaxRecordSize:
		return nil, corrupt("record of %d bytes, more than %d", len(b), MaxRecordSize)
	case len(b) < len(recordMagic)+1 || string(b[:len(recordMagic)]) != recordMagic:
		return nil, corrupt("not a snapshot record (no %q header)", recordMagic)
	case b[len(recordMagic)] > recordVersion:
		return nil, unsupported("snapshot record version %d", b[len(recordMagic)])
	case b[len(recordMagic)] != recordVersion:
		return nil, corrupt("snapshot record version %d", b[len(recordMagic)])
	}
	r := &Record{}
	seen, err := r.decodeFields(b[len(recordMagic)+1:])
	if err != nil {
		return nil, err
	}
	if seen&recordRequired != recordRequired {
		return nil, corrupt("record without a time or a root")
	}
	if err := r.Validate(); err != nil {
		return nil, corrupt("record: %v", err)
	}
	return r, nil
}

func (r *Record) decodeFields(b []byte) (seen uint32, err error) {
	s := fieldScanner{rest: b}
	for {
		tag, v, ok, err := s.next()
		if err != nil || !ok {
			return seen, err
		}
		switch tag {
		case tagRecordTime:
			r.Time, err = decodeTime(v)
		case tagRecordRoot:
			r.Root, err = decodeEntry(v)
		case tagRecordParent:
			r.Parent = string(v)
		case tagRecordParentRef:
			if len(v) != blobstore.RefSize {
				return seen, corrupt("parent ref of %d bytes", len(v))
			}
			r.ParentRef = blobstore.Ref(v)
		case tagRecordWriter:
			r.Writer = string(v)
		case tagRecordIndex:
			if len(v) != blobstore.RefSize || blobstore.Ref(v).IsZero() {
				return seen, corrupt("index ref of %d bytes, or zero", len(v))
			}
			r.Index = blobstore.Ref(v)
		default:
			if tag&mustUnderstand != 0 {
				return seen, unsupported("record field %#x", tag)
			}
			continue
		}
		if err != nil {
			return seen, err
		}
		seen |= 1 << tag
	}
}
