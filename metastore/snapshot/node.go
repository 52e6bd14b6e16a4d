package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/stofuse/stofuse/blobstore"
)

// A tree blob is a header and a list of items, each length-prefixed:
//
//	magic "sftree" | version 1 | level | item count (4, BE) | items
//
// Level 0 is a leaf, whose items are entries; a node of level L > 0 is an
// index, whose items are children of level L-1. docs/format.md has the
// byte tables.
const (
	treeMagic   = "sftree"
	treeVersion = 1
	headerSize  = len(treeMagic) + 1 + 1 + 4
	// MaxBlobSize bounds a tree blob that a reader accepts. The writer
	// emits blobs of at most maxBody + headerSize bytes; the margin leaves
	// room for later writers to choose larger blobs.
	MaxBlobSize = 1 << 20
	// maxLevel bounds the height of one directory's tree. With index
	// blobs of at least minBody bytes the fanout is 50 or more, so 16
	// levels hold far more entries than any directory has.
	maxLevel = 16
)

// Index item field tags.
const (
	tagChildFirst = 0x01
	tagChildRef   = 0x02
	tagChildCount = 0x03
	childFields   = 1<<tagChildFirst | 1<<tagChildRef | 1<<tagChildCount
)

// Node is one decoded tree blob: a leaf of entries or an index of children.
type Node struct {
	Level    int     // 0 for a leaf
	Entries  []Entry // a leaf's entries, sorted by name
	Children []Child // an index's children, sorted by first name
}

// Child is an index node's reference to the node below it.
type Child struct {
	First string        // the first name in the child's subtree
	Ref   blobstore.Ref // the child node's ref
	Count uint64        // how many entries the child's subtree holds
}

// Count returns the number of entries under n.
func (n *Node) Count() uint64 {
	if n.Level == 0 {
		return uint64(len(n.Entries))
	}
	var total uint64
	for _, c := range n.Children {
		total += c.Count
	}
	return total
}

// EncodeNode returns the plaintext of one tree blob. The Writer produces
// the same bytes for the nodes it emits; EncodeNode is for a caller that
// has a node in hand (and for tests). Errors wrap ErrInvalid.
func EncodeNode(n *Node) ([]byte, error) {
	if n.Level < 0 || n.Level > maxLevel || n.Level > 0 && (len(n.Entries) > 0 || len(n.Children) == 0) ||
		n.Level == 0 && len(n.Children) > 0 {
		return nil, invalid("node of level %d with %d entries and %d children", n.Level, len(n.Entries), len(n.Children))
	}
	b := appendHeader(nil, n.Level, 0)
	var err error
	for i := range n.Entries {
		if i > 0 && n.Entries[i].Name <= n.Entries[i-1].Name {
			return nil, invalid("entry %q after %q: names must ascend", n.Entries[i].Name, n.Entries[i-1].Name)
		}
		if b, err = appendEntry(b, &n.Entries[i]); err != nil {
			return nil, err
		}
	}
	for i, c := range n.Children {
		if i > 0 && c.First <= n.Children[i-1].First {
			return nil, invalid("child %q after %q: names must ascend", c.First, n.Children[i-1].First)
		}
		if b, err = appendChild(b, c); err != nil {
			return nil, err
		}
	}
	setHeaderCount(b, len(n.Entries)+len(n.Children))
	return b, nil
}

func appendHeader(b []byte, level, count int) []byte {
	b = append(b, treeMagic...)
	b = append(b, treeVersion, byte(level))
	return binary.BigEndian.AppendUint32(b, uint32(count))
}

func setHeaderCount(blob []byte, count int) {
	binary.BigEndian.PutUint32(blob[headerSize-4:headerSize], uint32(count))
}

func appendChild(b []byte, c Child) ([]byte, error) {
	if err := ValidName(c.First); err != nil {
		return b, err
	}
	if c.Ref.IsZero() || c.Count == 0 {
		return b, invalid("child %q with a zero ref or no entries", c.First)
	}
	b = binary.AppendUvarint(b, uint64(fieldLen(len(c.First))+fieldLen(blobstore.RefSize)+fieldLen(8)))
	b = appendField(b, tagChildFirst, c.First)
	b = appendBytesField(b, tagChildRef, c.Ref[:])
	return appendUint64Field(b, tagChildCount, c.Count), nil
}

// DecodeNode parses one tree blob's plaintext. It checks everything that
// can be checked without loading other blobs: framing, canonical form,
// names valid and ascending, counts. Errors wrap ErrCorrupt, or
// ErrUnsupported for data from a newer format.
func DecodeNode(b []byte) (*Node, error) {
	level, count, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	n := &Node{Level: level}
	items := b[headerSize:]
	prealloc := min(count, len(items)/8) // no item is shorter: an allocation bound for forged counts
	if level == 0 {
		n.Entries = make([]Entry, 0, prealloc)
	} else {
		n.Children = make([]Child, 0, prealloc)
	}
	for i := 0; i < count; i++ {
		item, rest, err := nextItem(items, i)
		if err != nil {
			return nil, err
		}
		items = rest
		if err := n.appendDecoded(item); err != nil {
			return nil, corruptItem(i, err)
		}
	}
	if len(items) != 0 {
		return nil, corrupt("%d bytes after the last of %d items", len(items), count)
	}
	return n, n.checkDecoded()
}

func decodeHeader(b []byte) (level, count int, err error) {
	switch {
	case len(b) > MaxBlobSize:
		return 0, 0, corrupt("tree blob of %d bytes, more than %d", len(b), MaxBlobSize)
	case len(b) < headerSize || string(b[:len(treeMagic)]) != treeMagic:
		return 0, 0, corrupt("not a tree blob (no %q header)", treeMagic)
	case b[len(treeMagic)] != treeVersion:
		if b[len(treeMagic)] > treeVersion {
			return 0, 0, unsupported("tree blob version %d", b[len(treeMagic)])
		}
		return 0, 0, corrupt("tree blob version %d", b[len(treeMagic)])
	case b[len(treeMagic)+1] > maxLevel:
		return 0, 0, corrupt("tree blob of level %d, more than %d", b[len(treeMagic)+1], maxLevel)
	}
	count64 := binary.BigEndian.Uint32(b[headerSize-4 : headerSize])
	if count64 > MaxBlobSize {
		return 0, 0, corrupt("tree blob claims %d items", count64)
	}
	return int(b[len(treeMagic)+1]), int(count64), nil
}

// nextItem splits one length-prefixed item off items.
func nextItem(items []byte, i int) (item, rest []byte, err error) {
	length, n, err := readUvarint(items)
	if err != nil {
		return nil, nil, corruptItem(i, err)
	}
	if length > uint64(len(items)-n) {
		return nil, nil, corrupt("item %d of %d bytes runs past the end", i, length)
	}
	return items[n : n+int(length)], items[n+int(length):], nil
}

// corruptItem says which item err is about; err already wraps ErrCorrupt
// or ErrUnsupported.
func corruptItem(i int, err error) error {
	return fmt.Errorf("item %d: %w", i, err)
}

// decodeChild decodes one index item's fields.
func decodeChild(b []byte) (Child, error) {
	var c Child
	var seen uint32
	s := fieldScanner{rest: b}
	for {
		tag, v, ok, err := s.next()
		if err != nil {
			return c, err
		}
		if !ok {
			break
		}
		switch tag {
		case tagChildFirst:
			c.First = string(v)
		case tagChildRef:
			if len(v) != blobstore.RefSize {
				return c, corrupt("child ref of %d bytes", len(v))
			}
			c.Ref = blobstore.Ref(v)
		case tagChildCount:
			if c.Count, err = decodeUint(v, 8); err != nil {
				return c, err
			}
		default:
			if tag&mustUnderstand != 0 {
				return c, unsupported("index field %#x", tag)
			}
			continue
		}
		seen |= 1 << tag
	}
	if seen != childFields || ValidName(c.First) != nil || c.Ref.IsZero() || c.Count == 0 {
		return c, corrupt("index item %q: missing fields, a bad name, a zero ref or no entries", truncateName(c.First))
	}
	return c, nil
}

// appendDecoded decodes one item into n, checking its order.
func (n *Node) appendDecoded(item []byte) error {
	if n.Level == 0 {
		e, err := decodeEntry(item)
		if err == nil && len(n.Entries) > 0 && e.Name <= n.Entries[len(n.Entries)-1].Name {
			err = corrupt("entry %q after %q: names must ascend", truncateName(e.Name), truncateName(n.Entries[len(n.Entries)-1].Name))
		}
		n.Entries = append(n.Entries, e)
		return err
	}
	c, err := decodeChild(item)
	if err == nil && len(n.Children) > 0 && c.First <= n.Children[len(n.Children)-1].First {
		err = corrupt("child %q after %q: names must ascend", truncateName(c.First), truncateName(n.Children[len(n.Children)-1].First))
	}
	n.Children = append(n.Children, c)
	return err
}

func (n *Node) checkDecoded() error {
	if n.Level > 0 && len(n.Children) == 0 {
		return corrupt("index node of level %d without children", n.Level)
	}
	var total uint64
	for _, c := range n.Children {
		if c.Count > math.MaxUint64-total {
			return corrupt("index node counts overflow")
		}
		total += c.Count
	}
	return nil
}
