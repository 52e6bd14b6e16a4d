package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/stofuse/stofuse/blobstore"
)

// The journal says what a power loss may have undone since the last group
// commit (Commit). Blobs are stored under blobstore.WithDeferredSync and
// their records written unsynced, and Badger may persist a record at any
// moment, before the blob's bytes are durable: after a power loss a record
// may name a blob that is missing or cut short. So every such write also
// writes, in its own transaction, a journal entry:
//
//	j b <ref 32> <volume id u32 BE>  a blob record's copy on the volume, whose
//	                                 bytes may not be durable: the generation
//	                                 (u64 BE) of the write
//	j i <ino u64 BE>                 a file whose content may not be durable:
//	                                 the generation of its latest commit, and
//	                                 the content it had before (encodeContentEntry)
//	j r <ino u64 BE> <ino u64 BE>    a file the first one, whose content may not be
//	                                 durable, replaced by a rename (replaced.go)
//
// A group commit syncs the volumes, then the database, then removes the
// entries it made durable. An open after an unclean stop finds the entries
// left and checks what they name (Settle). docs/format.md has the bytes.
const (
	journalBlob    = 'b' // after prefixJournal (keys.go)
	journalContent = 'i'
)

// journalState is the Store's side of the journal.
type journalState struct {
	// generation is stamped into the entries written now; Commit moves it
	// on, and removes the entries of the generations before.
	generation atomic.Uint64
	// base is this Open's first generation: every entry below it was
	// written by an earlier process, whose writes no Commit of this one
	// made durable, or left by Settle (generation 0), and only Settle
	// removes it. Set at Open, at least 1.
	base uint64
	// commitMu makes Commits take turns (held during their syncs).
	commitMu sync.Mutex
}

func journalBlobKey(ref blobstore.Ref, volumeID int) []byte {
	key := append([]byte{prefixJournal, journalBlob}, ref[:]...)
	return binary.BigEndian.AppendUint32(key, uint32(volumeID))
}

func journalContentKey(ino uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixJournal, journalContent}, ino)
}

// PendingBlob is a journal entry: the copy of Ref on Volume may not be
// durable.
type PendingBlob struct {
	Ref        blobstore.Ref
	Volume     int
	Generation uint64
}

// PendingContent is a journal entry: file Ino's content may not be
// durable. Generation is that of its latest content commit.
type PendingContent struct {
	Ino        uint64
	Generation uint64
	// Durable is the content the file had when the entry was made, which
	// was durable then (Had false: it had none, a new file).
	Durable Content
	// Newer, when not nil, is the content the file had when a Commit's
	// generation moved on under it (it was committed in one generation,
	// and changed again in a later one): durable once that Commit
	// succeeded, which an open checks like any journaled blob.
	Newer *Content
}

// Content is a file's content as a journal entry keeps it.
type Content struct {
	Had        bool // false: none (a file created and never committed)
	Ref        blobstore.Ref
	Size       int64
	StoredSize int64
	Mtime      time.Time
}

func contentOf(n *Inode) Content {
	if !n.Committed {
		return Content{}
	}
	return Content{Had: true, Ref: n.Ref, Size: n.Size, StoredSize: n.StoredSize, Mtime: n.Mtime}
}

// A content entry's value is the generation (u64 BE), the durable
// content, and, if there is one, the newer content: 65 or 122 bytes. A
// content is 57 bytes:
//
//	flags 1 (bit 0: had content) | ref 32 | size u64 BE |
//	stored size u64 BE | mtime i64 BE (Unix ns)
//
// (all zero when it had none).
const contentSize = 1 + blobstore.RefSize + 8 + 8 + 8

func encodeContentEntry(p PendingContent) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+2*contentSize), p.Generation)
	b = appendContent(b, p.Durable)
	if p.Newer != nil {
		b = appendContent(b, *p.Newer)
	}
	return b
}

func appendContent(b []byte, c Content) []byte {
	if !c.Had {
		return append(b, make([]byte, contentSize)...)
	}
	b = append(b, 1)
	b = append(b, c.Ref[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(c.StoredSize))
	return binary.BigEndian.AppendUint64(b, uint64(c.Mtime.UnixNano()))
}

func decodeContentEntry(ino uint64, b []byte) (PendingContent, error) {
	bad := fmt.Errorf("journal entry of inode %d: %w", ino, errBadRecord)
	if len(b) != 8+contentSize && len(b) != 8+2*contentSize {
		return PendingContent{}, bad
	}
	p := PendingContent{Ino: ino, Generation: binary.BigEndian.Uint64(b)}
	var ok bool
	if p.Durable, ok = decodeContent(b[8 : 8+contentSize]); !ok {
		return PendingContent{}, bad
	}
	if len(b) > 8+contentSize {
		newer, ok := decodeContent(b[8+contentSize:])
		if !ok {
			return PendingContent{}, bad
		}
		p.Newer = &newer
	}
	return p, nil
}

func decodeContent(b []byte) (Content, bool) {
	if b[0]&^1 != 0 {
		return Content{}, false
	}
	if b[0] == 0 {
		return Content{}, true
	}
	rest := b[1+blobstore.RefSize:]
	return Content{Had: true, Ref: blobstore.Ref(b[1 : 1+blobstore.RefSize]),
		Size:       int64(binary.BigEndian.Uint64(rest[0:8])),
		StoredSize: int64(binary.BigEndian.Uint64(rest[8:16])),
		Mtime:      time.Unix(0, int64(binary.BigEndian.Uint64(rest[16:24])))}, true
}

func decodeGeneration(b []byte) (uint64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("journal entry: %w", errBadRecord)
	}
	return binary.BigEndian.Uint64(b), nil
}

// journalBlobCopy records, in txn, that the copy of ref on volumeID may
// not be durable. The generation is read here, in the transaction, after
// the caller stored the blob: what Commit's ordering relies on.
func (s *Store) journalBlobCopy(txn *badgerdb.Txn, ref blobstore.Ref, volumeID int) error {
	gen := s.journal.generation.Load()
	return txn.Set(journalBlobKey(ref, volumeID), binary.BigEndian.AppendUint64(nil, gen))
}

// journalContentOf records, in txn, that file n (as it is before the
// change the caller makes in txn) gets content that may not be durable.
// An entry there already keeps its durable content, older; if it was
// written in an earlier generation, n's content now was committed before
// a Commit moved the generation on, and becomes its newer content.
func (s *Store) journalContentOf(txn *badgerdb.Txn, n *Inode) error {
	key := journalContentKey(n.Ino)
	gen := s.journal.generation.Load()
	entry := PendingContent{Ino: n.Ino, Durable: contentOf(n)}
	value, err := getCopy(txn, key, "journal entry")
	switch {
	case err == nil:
		if entry, err = decodeContentEntry(n.Ino, value); err != nil {
			return err
		}
		if entry.Generation < gen && n.Committed {
			now := contentOf(n)
			entry.Newer = &now
		}
	case !isNotExist(err):
		return err
	}
	entry.Generation = gen
	return txn.Set(key, encodeContentEntry(entry))
}

// Journal is what the journal holds.
type Journal struct {
	Blobs    []PendingBlob
	Contents []PendingContent
	Replaced []ReplacedFile // replaced.go
}

// Empty reports whether the journal holds nothing: the last stop was
// clean, or everything since was committed.
func (j *Journal) Empty() bool { return len(j.Blobs)+len(j.Contents)+len(j.Replaced) == 0 }

// Journal reads the journal's entries.
func (s *Store) Journal(ctx context.Context) (*Journal, error) {
	j := &Journal{}
	err := s.view(func(txn *badgerdb.Txn) error {
		return eachJournalEntry(ctx, txn, func(key, value []byte) error {
			switch {
			case key[1] == journalBlob && len(key) == 2+blobstore.RefSize+4:
				gen, err := decodeGeneration(value)
				if err != nil {
					return err
				}
				j.Blobs = append(j.Blobs, PendingBlob{Ref: blobstore.Ref(key[2 : 2+blobstore.RefSize]),
					Volume: int(binary.BigEndian.Uint32(key[2+blobstore.RefSize:])), Generation: gen})
			case key[1] == journalContent && len(key) == 2+8:
				entry, err := decodeContentEntry(binary.BigEndian.Uint64(key[2:]), value)
				if err != nil {
					return err
				}
				j.Contents = append(j.Contents, entry)
			case key[1] == journalReplaced:
				entry, err := decodeReplaced(key, value)
				if err != nil {
					return err
				}
				j.Replaced = append(j.Replaced, entry)
			default:
				return fmt.Errorf("journal key %x: %w", key, errBadRecord)
			}
			return nil
		})
	})
	return j, err
}

// eachJournalEntry calls fn with every journal key and value (valid only
// during fn).
func eachJournalEntry(ctx context.Context, txn *badgerdb.Txn, fn func(key, value []byte) error) error {
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixJournal}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		item := it.Item()
		if len(item.Key()) < 2 {
			return fmt.Errorf("journal key %x: %w", item.Key(), errBadRecord)
		}
		if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
			return err
		}
	}
	return nil
}

// openJournal starts this Open's generations after every generation in
// the journal, so that entries an earlier process left are never taken
// for this one's.
func (s *Store) openJournal() error {
	var newest uint64
	err := s.view(func(txn *badgerdb.Txn) error {
		return eachJournalEntry(context.Background(), txn, func(key, value []byte) error {
			gen, err := decodeGeneration(value)
			newest = max(newest, gen)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("reading the journal: %w", err)
	}
	s.journal.base = newest + 1
	s.journal.generation.Store(s.journal.base)
	return nil
}
