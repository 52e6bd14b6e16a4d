package snapshot

import (
	"encoding/binary"

	"github.com/stofuse/stofuse/blobstore"
)

// Entry field tags (docs/format.md, "Entry"). The order here is the order
// in the encoding.
const (
	tagName       = 0x01
	tagKind       = 0x02
	tagIno        = 0x03
	tagMode       = 0x04
	tagUID        = 0x05
	tagGID        = 0x06
	tagSize       = 0x07
	tagMtime      = 0x08
	tagCtime      = 0x09
	tagRef        = 0x0a
	tagStoredSize = 0x0b
	tagTarget     = 0x0c
	tagRdev       = 0x0d
	tagXattrs     = 0x0e // optional, for every kind: an old reader may skip it
	// tagLinks is the link count of an inode with several names (hard
	// links): 0x80 and up, since a reader that does not know it would
	// restore the names as separate files.
	tagLinks = 0x80
)

// alwaysPresent are the fields every entry has, as a bit set of tags.
const alwaysPresent = 1<<tagName | 1<<tagKind | 1<<tagIno | 1<<tagMode | 1<<tagUID |
	1<<tagGID | 1<<tagSize | 1<<tagMtime | 1<<tagCtime

// fieldsOf is the set of fields that an entry of this kind, with or without
// a ref, is encoded with: the encoder writes exactly these and the decoder
// accepts exactly these, so the set is part of the canonical form.
func fieldsOf(kind Kind, hasRef bool) uint32 {
	switch {
	case kind == KindFile && hasRef:
		return alwaysPresent | 1<<tagRef | 1<<tagStoredSize
	case kind == KindFile:
		return alwaysPresent
	case kind == KindDir:
		return alwaysPresent | 1<<tagRef
	case kind == KindSymlink:
		return alwaysPresent | 1<<tagTarget
	case kind.isDevice():
		return alwaysPresent | 1<<tagRdev
	default: // FIFOs and sockets
		return alwaysPresent
	}
}

// entryFieldsLen is the size of an entry's fields without its length prefix.
func entryFieldsLen(e *Entry) int {
	// name, kind, ino and size, mode uid gid, mtime ctime
	n := fieldLen(len(e.Name)) + fieldLen(1) + 2*fieldLen(8) + 3*fieldLen(4) + 2*fieldLen(timeSize)
	if !e.Ref.IsZero() {
		n += fieldLen(blobstore.RefSize)
		if e.Kind == KindFile {
			n += fieldLen(8)
		}
	}
	if e.Kind == KindSymlink {
		n += fieldLen(len(e.Target))
	}
	if e.Kind.isDevice() {
		n += fieldLen(4)
	}
	if len(e.Xattrs) > 0 {
		n += fieldLen(xattrsLen(e.Xattrs))
	}
	if e.Nlink != 0 {
		n += fieldLen(4)
	}
	return n
}

// appendEntry appends one entry, length-prefixed, after validating it.
func appendEntry(b []byte, e *Entry) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return b, err
	}
	size := entryFieldsLen(e)
	if size > MaxEntrySize {
		return b, invalid("entry %q encodes to %d bytes, more than %d", e.Name, size, MaxEntrySize)
	}
	b = binary.AppendUvarint(b, uint64(size))
	b = appendField(b, tagName, e.Name)
	b = append(b, tagKind, 1, byte(e.Kind))
	b = appendUint64Field(b, tagIno, e.Ino)
	b = appendUint32Field(b, tagMode, e.Mode)
	b = appendUint32Field(b, tagUID, e.UID)
	b = appendUint32Field(b, tagGID, e.GID)
	b = appendUint64Field(b, tagSize, uint64(e.Size))
	b = appendTimeField(b, tagMtime, e.Mtime)
	b = appendTimeField(b, tagCtime, e.Ctime)
	if !e.Ref.IsZero() {
		b = appendBytesField(b, tagRef, e.Ref[:])
		if e.Kind == KindFile {
			b = appendUint64Field(b, tagStoredSize, uint64(e.StoredSize))
		}
	}
	if e.Kind == KindSymlink {
		b = appendField(b, tagTarget, e.Target)
	}
	if e.Kind.isDevice() {
		b = appendUint32Field(b, tagRdev, e.Rdev)
	}
	if len(e.Xattrs) > 0 {
		b = appendXattrs(b, e.Xattrs)
	}
	if e.Nlink != 0 {
		b = appendUint32Field(b, tagLinks, e.Nlink)
	}
	return b, nil
}

// decodeEntry decodes one entry's fields (without the length prefix).
func decodeEntry(b []byte) (Entry, error) {
	var e Entry
	var seen uint32
	s := fieldScanner{rest: b}
	for {
		tag, value, ok, err := s.next()
		if err != nil || !ok {
			if err != nil {
				return e, err
			}
			break
		}
		if tag == tagLinks {
			u, err := decodeUint(value, 4)
			if err != nil {
				return e, err
			}
			if e.Nlink = uint32(u); e.Nlink < 2 {
				return e, corrupt("entry %q with a link count of %d", truncateName(e.Name), e.Nlink)
			}
			continue
		}
		if tag == tagXattrs {
			if e.Xattrs, err = decodeXattrs(value); err != nil {
				return e, err
			}
			continue
		}
		if tag > tagRdev {
			if tag&mustUnderstand != 0 {
				return e, unsupported("entry field %#x", tag)
			}
			continue // an optional field from a later format
		}
		if err := setEntryField(&e, tag, value); err != nil {
			return e, err
		}
		seen |= 1 << tag
	}
	return e, checkDecodedEntry(&e, seen)
}

func checkDecodedEntry(e *Entry, seen uint32) error {
	if seen&(1<<tagKind) != 0 && (e.Kind < KindFile || e.Kind > lastKind) {
		if e.Kind == 0 {
			return corrupt("entry of kind 0")
		}
		return unsupported("entry %q of kind %d", truncateName(e.Name), e.Kind)
	}
	if seen&(1<<tagRef) != 0 && e.Ref.IsZero() {
		return corrupt("entry %q with an all-zero ref field", truncateName(e.Name))
	}
	if want := fieldsOf(e.Kind, !e.Ref.IsZero()); seen != want {
		return corrupt("entry %q has fields %#x, a %s has %#x", truncateName(e.Name), seen, e.Kind, want)
	}
	if err := e.Validate(); err != nil {
		return corrupt("%v", err)
	}
	return nil
}

func setEntryField(e *Entry, tag byte, v []byte) error {
	var err error
	var u uint64
	switch tag {
	case tagName:
		e.Name = string(v)
	case tagKind:
		if len(v) != 1 {
			return corrupt("kind of %d bytes", len(v))
		}
		e.Kind = Kind(v[0])
	case tagIno:
		e.Ino, err = decodeUint(v, 8)
	case tagMode:
		u, err = decodeUint(v, 4)
		e.Mode = uint32(u)
	case tagUID:
		u, err = decodeUint(v, 4)
		e.UID = uint32(u)
	case tagGID:
		u, err = decodeUint(v, 4)
		e.GID = uint32(u)
	case tagSize:
		e.Size, err = decodeSize(v)
	case tagMtime:
		e.Mtime, err = decodeTime(v)
	case tagCtime:
		e.Ctime, err = decodeTime(v)
	case tagRef:
		if len(v) != blobstore.RefSize {
			return corrupt("ref of %d bytes", len(v))
		}
		e.Ref = blobstore.Ref(v)
	case tagStoredSize:
		e.StoredSize, err = decodeSize(v)
	case tagTarget:
		e.Target = string(v)
	case tagRdev:
		u, err = decodeUint(v, 4)
		e.Rdev = uint32(u)
	}
	return err
}
