package store

import (
	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// maxIndexChain is how many segments an index chain may hold before a
// snapshot writes a full index instead of one more segment: what a
// recovery reads is bounded, and records overwritten many times do not
// pile up.
const maxIndexChain = 64

// writtenIndex is the blob index a snapshot wrote.
type writtenIndex struct {
	head   blobstore.Ref        // the newest segment (zero: none)
	length int                  // segments in the chain
	marks  []badger.IndexedBlob // the changes it holds, to clear once the record is named
}

// writeIndex stores the segments of the collection's blob index that
// hold what changed since the last snapshot (or, for the first snapshot
// and when the chain is long, every blob sealed with its key), sealed
// like tree blobs, and returns the new head.
func (s *Store) writeIndex(sn *snapshotter, keyID string, last *lastSnapshot) (writtenIndex, error) {
	out := writtenIndex{head: last.Index, length: last.IndexLen}
	err := s.meta.IndexChanges(sn.ctx, keyID, func(b badger.IndexedBlob) error {
		out.marks = append(out.marks, b)
		return nil
	})
	if err != nil {
		return out, err
	}
	records := out.marks
	full := last.Index.IsZero() || last.IndexLen >= maxIndexChain
	if full {
		records = nil
		err = s.meta.AllIndexed(sn.ctx, keyID, func(b badger.IndexedBlob) error {
			records = append(records, b)
			return nil
		})
		if err != nil {
			return out, err
		}
		out.head, out.length = blobstore.Ref{}, 0
	}
	for start := 0; start < len(records); start += snapshot.MaxSegmentRecords {
		seg := &snapshot.Segment{Parent: out.head}
		for _, b := range records[start:min(start+snapshot.MaxSegmentRecords, len(records))] {
			seg.Records = append(seg.Records, indexRecord(b))
		}
		body, err := snapshot.EncodeSegment(seg)
		if err != nil {
			return out, err
		}
		ref := blobstore.RefOf(body)
		if err := sn.emit(sn.ctx, ref, body); err != nil {
			return out, err
		}
		out.head, out.length = ref, out.length+1
	}
	return out, nil
}

func indexRecord(b badger.IndexedBlob) snapshot.BlobRecord {
	r := snapshot.BlobRecord{Ref: b.Ref, Compressed: b.IsCompressed, Size: b.RealSize, StoredSize: b.SizeOnDisk,
		Created: b.Created.UTC(), Mtime: b.Mtime}
	copy(r.CRC32C[:], b.ExpectedCrc32)
	return r
}
