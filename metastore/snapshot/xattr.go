package snapshot

import (
	"encoding/binary"
	"strings"
)

// Xattr is an extended attribute of an entry's inode: a user.* name, the
// only namespace the tree keeps.
type Xattr struct {
	Name  string
	Value []byte
}

// Limits on an entry's extended attributes, those of the files/ tree
// (metastore.MaxXattrName, MaxXattrsSize): a name of up to 255 bytes
// without NUL, user. and at least one byte more, and the names and values
// of one entry together at most 32 KiB, so
// that an entry stays below MaxEntrySize.
const (
	MaxXattrName  = 255
	MaxXattrsSize = 32 << 10
)

// validXattrs checks an entry's attributes: valid names, strictly
// ascending (so each once), within MaxXattrsSize.
func validXattrs(e *Entry) error {
	size := 0
	for i, x := range e.Xattrs {
		if !strings.HasPrefix(x.Name, "user.") || len(x.Name) == len("user.") || len(x.Name) > MaxXattrName ||
			strings.IndexByte(x.Name, 0) >= 0 {
			return invalid("entry %q: attribute name %q", e.Name, truncateName(x.Name))
		}
		if i > 0 && x.Name <= e.Xattrs[i-1].Name {
			return invalid("entry %q: attribute %q out of order or twice", e.Name, truncateName(x.Name))
		}
		size += len(x.Name) + len(x.Value)
	}
	if size > MaxXattrsSize {
		return invalid("entry %q: attributes of %d bytes, more than %d", e.Name, size, MaxXattrsSize)
	}
	return nil
}

// The value of field 0e: for each attribute, in name order, the name's
// length (uvarint), the name, the value's length (uvarint), the value.
func xattrsLen(xattrs []Xattr) int {
	n := 0
	for _, x := range xattrs {
		n += uvarintLen(uint64(len(x.Name))) + len(x.Name) + uvarintLen(uint64(len(x.Value))) + len(x.Value)
	}
	return n
}

func appendXattrs(b []byte, xattrs []Xattr) []byte {
	b = append(b, tagXattrs)
	b = binary.AppendUvarint(b, uint64(xattrsLen(xattrs)))
	for _, x := range xattrs {
		b = binary.AppendUvarint(b, uint64(len(x.Name)))
		b = append(b, x.Name...)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

func decodeXattrs(v []byte) ([]Xattr, error) {
	if len(v) == 0 {
		return nil, corrupt("an empty attributes field")
	}
	var xattrs []Xattr
	for len(v) > 0 {
		var parts [2][]byte
		for i := range parts {
			length, n, err := readUvarint(v)
			if err != nil {
				return nil, err
			}
			if length > uint64(len(v)-n) {
				return nil, corrupt("attribute of %d bytes in %d", length, len(v)-n)
			}
			parts[i], v = v[n:n+int(length)], v[n+int(length):]
		}
		xattrs = append(xattrs, Xattr{Name: string(parts[0]), Value: append([]byte{}, parts[1]...)})
	}
	return xattrs, nil
}

func sameXattrs(a, b []Xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Value) != string(b[i].Value) {
			return false
		}
	}
	return true
}
