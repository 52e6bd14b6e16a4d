package snapshot

import (
	"encoding/binary"
	"math"
	"time"
)

// Entries, index entries and records are lists of fields:
//
//	tag (1 byte) | length (uvarint) | value (length bytes)
//
// in strictly ascending tag order, each tag at most once, lengths written
// in the fewest bytes. Those rules make the encoding canonical: one value
// has one encoding, so equal trees give equal refs. A reader skips a field
// whose tag it does not know unless the tag has the mustUnderstand bit, in
// which case it rejects the data with ErrUnsupported: a later format can
// add optional fields (xattrs) that old readers may ignore, and fields that
// change meaning (hard-link identity) that they must not.
const mustUnderstand = 0x80

// timeSize is a time's encoded size: Unix seconds as a signed 64-bit BE
// integer, then nanoseconds (0..999 999 999) as a 32-bit BE integer.
const timeSize = 12

func fieldLen(valueLen int) int {
	return 1 + uvarintLen(uint64(valueLen)) + valueLen
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func appendField(b []byte, tag byte, value string) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

func appendBytesField(b []byte, tag byte, value []byte) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

func appendUint64Field(b []byte, tag byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, tag, 8), v)
}

func appendUint32Field(b []byte, tag byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, tag, 4), v)
}

func appendTimeField(b []byte, tag byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(append(b, tag, timeSize), uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func decodeTime(v []byte) (time.Time, error) {
	if len(v) != timeSize {
		return time.Time{}, corrupt("time of %d bytes, want %d", len(v), timeSize)
	}
	nsec := binary.BigEndian.Uint32(v[8:])
	if nsec >= 1e9 {
		return time.Time{}, corrupt("time with %d nanoseconds", nsec)
	}
	return time.Unix(int64(binary.BigEndian.Uint64(v)), int64(nsec)).UTC(), nil
}

func decodeUint(v []byte, size int) (uint64, error) {
	if len(v) != size {
		return 0, corrupt("integer field of %d bytes, want %d", len(v), size)
	}
	if size == 4 {
		return uint64(binary.BigEndian.Uint32(v)), nil
	}
	return binary.BigEndian.Uint64(v), nil
}

// decodeSize reads a size that must fit an int64.
func decodeSize(v []byte) (int64, error) {
	u, err := decodeUint(v, 8)
	if err == nil && u > math.MaxInt64 {
		err = corrupt("size %d out of range", u)
	}
	return int64(u), err
}

// readUvarint reads a canonical uvarint: no more bytes than needed.
func readUvarint(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, corrupt("truncated or overlong varint")
	}
	if n > 1 && b[n-1] == 0 {
		return 0, 0, corrupt("varint in more bytes than needed")
	}
	return v, n, nil
}

// fieldScanner walks a list of fields, checking the framing and the order
// of tags; what a tag means is for its caller.
type fieldScanner struct {
	rest    []byte
	lastTag int // 0 before the first field; tag 0 is never valid
}

// next returns the next field, or ok false at the end of the list.
func (s *fieldScanner) next() (tag byte, value []byte, ok bool, err error) {
	if len(s.rest) == 0 {
		return 0, nil, false, nil
	}
	tag = s.rest[0]
	if int(tag) <= s.lastTag {
		return 0, nil, false, corrupt("field tag %#x after %#x: tags must ascend", tag, s.lastTag)
	}
	length, n, err := readUvarint(s.rest[1:])
	if err != nil {
		return 0, nil, false, err
	}
	if length > uint64(len(s.rest)-1-n) {
		return 0, nil, false, corrupt("field %#x of %d bytes runs past the end", tag, length)
	}
	value = s.rest[1+n : 1+n+int(length)]
	s.rest = s.rest[1+n+int(length):]
	s.lastTag = int(tag)
	return tag, value, true, nil
}
