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
	head   blobstore.Ref      // the newest segment (zero: none)
	length int                // segments in the chain
	marks  []badger.IndexMark // the changes it holds, to clear once the record is named
	// covered names the explicit-store notes on the volume that it makes
	// needless: it holds their blobs as explicit stores.
	covered []string
}

// writeIndex stores the segments of the collection's blob index that
// hold what changed since the last snapshot (or, for the first snapshot
// and when the chain is long, every blob sealed with its key), sealed
// like tree blobs, and returns the new head. Records stream from the
// metadata (in ref order) into segments: a full index of millions of
// blobs holds one segment's records in memory at a time.
func (s *Store) writeIndex(sn *snapshotter, keyID string, last *lastSnapshot) (writtenIndex, error) {
	full := last.Index.IsZero() || last.IndexLen >= maxIndexChain
	w := &segmentWriter{sn: sn, out: writtenIndex{head: last.Index, length: last.IndexLen}, noted: map[blobstore.Ref]string{}}
	driver, err := s.ctl.Driver(sn.volume)
	if err != nil {
		return w.out, err
	}
	err = explicitNotes(sn.ctx, driver, explicitNotePrefix+keyID+"/", func(name string, ref blobstore.Ref) error {
		w.noted[ref] = name
		return nil
	})
	if err != nil {
		return w.out, err
	}
	if full {
		w.out.head, w.out.length = blobstore.Ref{}, 0
	}
	err = s.meta.IndexChanges(sn.ctx, keyID, func(b badger.IndexedBlob) error {
		w.out.marks = append(w.out.marks, b.Mark)
		if full {
			return nil
		}
		return w.add(b)
	})
	if err == nil && full {
		err = s.meta.AllIndexed(sn.ctx, keyID, w.add)
	}
	if err == nil {
		err = w.flush()
	}
	return w.out, err
}

// segmentWriter cuts a stream of records, in ref order, into segments.
type segmentWriter struct {
	sn      *snapshotter
	out     writtenIndex
	pending []snapshot.BlobRecord
	noted   map[blobstore.Ref]string // the volume's explicit-store notes of the collection
}

func (w *segmentWriter) add(b badger.IndexedBlob) error {
	if name, ok := w.noted[b.Ref]; ok && b.Explicit {
		w.out.covered = append(w.out.covered, name)
	}
	if w.pending = append(w.pending, indexRecord(b)); len(w.pending) < snapshot.MaxSegmentRecords {
		return nil
	}
	return w.flush()
}

// flush stores the pending records as the chain's next segment.
func (w *segmentWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	body, err := snapshot.EncodeSegment(&snapshot.Segment{Parent: w.out.head, Records: w.pending, ExplicitKnown: true})
	if err != nil {
		return err
	}
	ref := blobstore.RefOf(body)
	if err := w.sn.emit(w.sn.ctx, ref, body); err != nil {
		return err
	}
	w.out.head, w.out.length, w.pending = ref, w.out.length+1, w.pending[:0]
	return nil
}

func indexRecord(b badger.IndexedBlob) snapshot.BlobRecord {
	r := snapshot.BlobRecord{Ref: b.Ref, Compressed: b.IsCompressed, Size: b.RealSize, StoredSize: b.SizeOnDisk,
		Created: b.Created.UTC(), Mtime: b.Mtime, Explicit: b.Explicit}
	copy(r.CRC32C[:], b.ExpectedCrc32)
	return r
}
