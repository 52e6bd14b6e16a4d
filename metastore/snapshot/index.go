package snapshot

import (
	"bytes"
	"encoding/binary"
	"sort"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// The blob index: with each snapshot, the records of the blobs sealed with
// the collection's key that changed since the snapshot before, so that a
// recovery from the volume knows every indexed blob's metadata (and so
// checks its stored bytes against the recorded checksum, without a key,
// and knows which key opens it). An index is a chain of segments, newest
// first; a segment is a blob, sealed like a tree blob:
//
//	magic "sfidx" | version 1 | fields
//
// with the fields 01 parent segment ref (32 bytes, optional) and 02 the
// records: a uvarint count, then each record
//
//	ref 32 | flags 1 (bit 0: compressed) | CRC-32C 4 | plaintext size uvarint |
//	stored size uvarint | created varint (Unix ns) | mtime varint (Unix ns, 0: none)
//
// in strictly ascending ref order, and 03 the explicit stores: a bitmap
// with one bit per record, in the records' order (bit i&7 of byte i>>3),
// set when the blob was stored explicitly and not released, so that a
// recovery knows which blobs gc must keep for that reason alone. A segment
// without 03 was written before explicit stores were kept: whether its
// blobs were is not known. Of the records of one ref in a chain, the
// newest segment's is the blob's.
const (
	indexMagic       = "sfidx"
	indexVersion     = 1
	tagIndexParent   = 0x01
	tagIndexRecords  = 0x02
	tagIndexExplicit = 0x03
	// MaxSegmentRecords bounds a segment (a writer splits a longer list
	// into a chain of segments): about 1 MiB of records.
	MaxSegmentRecords = 16384
)

// BlobRecord is what the index keeps of one blob.
type BlobRecord struct {
	Ref        blobstore.Ref
	Compressed bool
	CRC32C     [4]byte
	Size       int64 // plaintext
	StoredSize int64
	Created    time.Time
	Mtime      time.Time // set through the mount; zero if never
	// Explicit: stored explicitly (stofuse put, a write into ref/) and not
	// released. Meaningful only in a Segment whose ExplicitKnown is set.
	Explicit bool
}

// Segment is one blob of an index chain.
type Segment struct {
	Parent  blobstore.Ref // the older segment; zero for the first
	Records []BlobRecord  // ascending by ref
	// ExplicitKnown: the records' Explicit says which blobs were stored
	// explicitly (field 03). A segment written before explicit stores were
	// kept has no field 03, and does not know.
	ExplicitKnown bool
}

// EncodeSegment returns a segment's canonical encoding; records are
// sorted (a copy) and must be unique, at most MaxSegmentRecords.
func EncodeSegment(s *Segment) ([]byte, error) {
	if len(s.Records) > MaxSegmentRecords {
		return nil, invalid("index segment of %d records, more than %d", len(s.Records), MaxSegmentRecords)
	}
	records := append([]BlobRecord(nil), s.Records...)
	sort.Slice(records, func(i, j int) bool { return bytes.Compare(records[i].Ref[:], records[j].Ref[:]) < 0 })
	body := binary.AppendUvarint(nil, uint64(len(records)))
	for i, r := range records {
		if i > 0 && records[i-1].Ref == r.Ref {
			return nil, invalid("index segment lists %s twice", r.Ref)
		}
		if r.Size < 0 || r.StoredSize < 0 {
			return nil, invalid("index record %s: negative size", r.Ref)
		}
		body = appendBlobRecord(body, &r)
	}
	b := append([]byte(indexMagic), indexVersion)
	if !s.Parent.IsZero() {
		b = appendBytesField(b, tagIndexParent, s.Parent[:])
	}
	b = appendBytesField(b, tagIndexRecords, body)
	if s.ExplicitKnown {
		b = appendBytesField(b, tagIndexExplicit, explicitBitmap(records))
	}
	return b, nil
}

// explicitBitmap is field 03 of records, in their order.
func explicitBitmap(records []BlobRecord) []byte {
	bits := make([]byte, (len(records)+7)/8)
	for i, r := range records {
		if r.Explicit {
			bits[i>>3] |= 1 << (i & 7)
		}
	}
	return bits
}

// setExplicit reads field 03 into records: exactly one bit per record,
// and the bits past the last zero, so that one segment has one encoding.
func setExplicit(records []BlobRecord, bits []byte) error {
	if len(bits) != (len(records)+7)/8 {
		return corrupt("an explicit-store bitmap of %d bytes for %d records", len(bits), len(records))
	}
	if n := len(records) & 7; n != 0 && bits[len(bits)-1]>>n != 0 {
		return corrupt("explicit-store bits set past the last record")
	}
	for i := range records {
		records[i].Explicit = bits[i>>3]&(1<<(i&7)) != 0
	}
	return nil
}

func appendBlobRecord(b []byte, r *BlobRecord) []byte {
	var flags byte
	if r.Compressed {
		flags = 1
	}
	b = append(append(b, r.Ref[:]...), flags)
	b = append(b, r.CRC32C[:]...)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendUvarint(b, uint64(r.StoredSize))
	b = binary.AppendVarint(b, r.Created.UnixNano())
	var mtime int64
	if !r.Mtime.IsZero() {
		mtime = r.Mtime.UnixNano()
	}
	return binary.AppendVarint(b, mtime)
}

// DecodeSegment parses an encoded segment (untrusted bytes: every error
// wraps ErrCorrupt, or ErrUnsupported for a newer format).
func DecodeSegment(b []byte) (*Segment, error) {
	switch {
	case len(b) < len(indexMagic)+1 || string(b[:len(indexMagic)]) != indexMagic:
		return nil, corrupt("not a blob index segment (no %q header)", indexMagic)
	case b[len(indexMagic)] > indexVersion:
		return nil, unsupported("blob index version %d", b[len(indexMagic)])
	case b[len(indexMagic)] != indexVersion:
		return nil, corrupt("blob index version %d", b[len(indexMagic)])
	}
	s := &Segment{}
	fields := fieldScanner{rest: b[len(indexMagic)+1:]}
	sawRecords := false
	for {
		tag, v, ok, err := fields.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch tag {
		case tagIndexParent:
			if len(v) != blobstore.RefSize || blobstore.Ref(v).IsZero() {
				return nil, corrupt("index parent of %d bytes, or zero", len(v))
			}
			s.Parent = blobstore.Ref(v)
		case tagIndexRecords:
			if s.Records, err = decodeBlobRecords(v); err != nil {
				return nil, err
			}
			sawRecords = true
		case tagIndexExplicit:
			if !sawRecords {
				return nil, corrupt("an explicit-store bitmap before the records")
			}
			if err := setExplicit(s.Records, v); err != nil {
				return nil, err
			}
			s.ExplicitKnown = true
		default:
			if tag&mustUnderstand != 0 {
				return nil, unsupported("index field %#x", tag)
			}
		}
	}
	if !sawRecords {
		return nil, corrupt("index segment without records")
	}
	return s, nil
}

func decodeBlobRecords(b []byte) ([]BlobRecord, error) {
	count, n, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	if count > MaxSegmentRecords || count > uint64(len(b)) {
		return nil, corrupt("index segment claims %d records", count)
	}
	records := make([]BlobRecord, 0, count)
	rest := b[n:]
	for i := uint64(0); i < count; i++ {
		var r BlobRecord
		if rest, err = decodeBlobRecord(rest, &r); err != nil {
			return nil, err
		}
		if i > 0 && bytes.Compare(records[i-1].Ref[:], r.Ref[:]) >= 0 {
			return nil, corrupt("index records out of order at %s", r.Ref)
		}
		records = append(records, r)
	}
	if len(rest) != 0 {
		return nil, corrupt("%d bytes after the index records", len(rest))
	}
	return records, nil
}

func decodeBlobRecord(b []byte, r *BlobRecord) ([]byte, error) {
	if len(b) < blobstore.RefSize+5 {
		return nil, corrupt("truncated index record")
	}
	r.Ref = blobstore.Ref(b[:blobstore.RefSize])
	flags := b[blobstore.RefSize]
	if flags&^1 != 0 {
		return nil, corrupt("index record %s with flags %#x", r.Ref, flags)
	}
	r.Compressed = flags == 1
	copy(r.CRC32C[:], b[blobstore.RefSize+1:])
	rest := b[blobstore.RefSize+5:]
	var vals [4]int64
	for i := range vals {
		var n int
		if i < 2 {
			u, m, err := readUvarint(rest)
			if err != nil || int64(u) < 0 {
				return nil, corrupt("index record %s: bad size", r.Ref)
			}
			vals[i], n = int64(u), m
		} else {
			vals[i], n = binary.Varint(rest)
			if n <= 0 {
				return nil, corrupt("index record %s: bad time", r.Ref)
			}
		}
		rest = rest[n:]
	}
	r.Size, r.StoredSize, r.Created = vals[0], vals[1], time.Unix(0, vals[2]).UTC()
	if vals[3] != 0 {
		r.Mtime = time.Unix(0, vals[3]).UTC()
	}
	return rest, nil
}
