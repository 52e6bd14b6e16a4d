package badger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// A blob record is stored in a compact binary form, because listings read
// millions of them:
//
//	version   1 byte (1)
//	flags     1 byte: bit 0 compressed, bit 1 has mtime, bit 2 stored
//	          explicitly (explicit.go)
//	realSize  uvarint
//	stored    uvarint (SizeOnDisk)
//	crc32c    4 bytes
//	created   varint, Unix nanoseconds
//	mtime     varint, Unix nanoseconds (only with flag bit 1)
//	keyId     uvarint length, bytes
//	volumes   uvarint count, then one uvarint each
const recordVersion = 1

const (
	flagCompressed = 1 << 0
	flagMtime      = 1 << 1
	flagExplicit   = 1 << 2
)

// blobRecord is BlobMeta as stored, plus the modification time set through
// the mount (utimens), zero when never set, and whether the blob was
// stored explicitly and not released.
type blobRecord struct {
	diskaccess.BlobMeta
	Mtime    time.Time
	Explicit bool
}

func encodeRecord(r *blobRecord) []byte {
	if len(r.ExpectedCrc32) != 4 {
		panic(fmt.Sprintf("badger: blob %s has a %d-byte CRC", r.Ref, len(r.ExpectedCrc32)))
	}
	var flags byte
	if r.IsCompressed {
		flags |= flagCompressed
	}
	if !r.Mtime.IsZero() {
		flags |= flagMtime
	}
	if r.Explicit {
		flags |= flagExplicit
	}
	b := []byte{recordVersion, flags}
	b = binary.AppendUvarint(b, uint64(r.RealSize))
	b = binary.AppendUvarint(b, uint64(r.SizeOnDisk))
	b = append(b, r.ExpectedCrc32...)
	b = binary.AppendVarint(b, r.Created.UnixNano())
	if !r.Mtime.IsZero() {
		b = binary.AppendVarint(b, r.Mtime.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(r.EncryptionKeyId)))
	b = append(b, r.EncryptionKeyId...)
	b = binary.AppendUvarint(b, uint64(len(r.Volumes)))
	for _, v := range r.Volumes {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b
}

var errBadRecord = errors.New("damaged blob record")

// recordDecoder reads fields in order; the first error sticks.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.err = errBadRecord
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func decodeRecord(ref blobstore.Ref, b []byte) (*blobRecord, error) {
	if len(b) < 2 || b[0] != recordVersion {
		return nil, fmt.Errorf("blob %s: %w", ref, errBadRecord)
	}
	flags := b[1]
	d := &recordDecoder{b: b[2:]}
	r := &blobRecord{BlobMeta: diskaccess.BlobMeta{Ref: ref, IsCompressed: flags&flagCompressed != 0}, Explicit: flags&flagExplicit != 0}
	r.RealSize = int64(d.uvarint())
	r.SizeOnDisk = int64(d.uvarint())
	r.ExpectedCrc32 = append([]byte(nil), d.bytes(4)...)
	r.Created = time.Unix(0, d.varint()).UTC()
	if flags&flagMtime != 0 {
		r.Mtime = time.Unix(0, d.varint()).UTC()
	}
	r.EncryptionKeyId = string(d.bytes(d.uvarint()))
	count := d.uvarint()
	if count > uint64(len(d.b)) { // each volume takes at least one byte
		d.err = errBadRecord
	}
	for i := uint64(0); i < count && d.err == nil; i++ {
		r.Volumes = append(r.Volumes, int(d.uvarint()))
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, fmt.Errorf("blob %s: %w", ref, errBadRecord)
	}
	return r, nil
}
