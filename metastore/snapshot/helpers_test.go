package snapshot

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// memStore keeps emitted blobs in memory and serves them back, as a
// collection's volume would through WriteBlob and Fetch.
type memStore struct {
	mu      sync.Mutex // guards blobs and emitted
	blobs   map[blobstore.Ref][]byte
	emitted int // Emit calls, including repeats
}

func newMemStore() *memStore { return &memStore{blobs: map[blobstore.Ref][]byte{}} }

func (s *memStore) emit(_ context.Context, ref blobstore.Ref, plain []byte) error {
	if blobstore.RefOf(plain) != ref {
		return fmt.Errorf("emitted %s with bytes that hash elsewhere", ref)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitted++
	if _, ok := s.blobs[ref]; !ok {
		s.blobs[ref] = append([]byte(nil), plain...)
	}
	return nil
}

func (s *memStore) load(_ context.Context, ref blobstore.Ref) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[ref]
	if !ok {
		return nil, fmt.Errorf("%s: %w", ref, fs.ErrNotExist)
	}
	return b, nil
}

var epoch = time.Date(2026, 12, 1, 9, 30, 5, 123456789, time.UTC)

// fileEntry is a file named name with attributes derived from i. Its
// content ref is made from i cheaply: the tests build millions.
func fileEntry(name string, i int) Entry {
	var ref blobstore.Ref
	binary.BigEndian.PutUint64(ref[:], uint64(i)+1)
	binary.BigEndian.PutUint64(ref[24:], uint64(i)*0x9e3779b97f4a7c15)
	return Entry{
		Name: name, Kind: KindFile, Ino: 1<<62 | uint64(i+1), Mode: 0o644, UID: 1000, GID: 1000,
		Size: int64(i * 7), Mtime: epoch.Add(time.Duration(i) * time.Second), Ctime: epoch,
		Ref: ref, StoredSize: int64(i*7 + 89),
	}
}

// bigName is entry i's name in a generated large directory: zero padded,
// so that names sort as the numbers do.
func bigName(i int) string {
	var buf [32]byte
	b := append(buf[:0], "file-"...)
	digits := strconv.AppendInt(buf[16:16], int64(i), 10)
	for range 8 - len(digits) {
		b = append(b, '0')
	}
	return string(append(append(b, digits...), ".dat"...))
}

// buildBig feeds n generated entries to a Writer, letting change alter the
// listing (return false to drop an entry), and returns the root.
func buildBig(t testing.TB, n int, emit Emit, change func(i int, e *Entry) []Entry) blobstore.Ref {
	t.Helper()
	ctx := context.Background()
	w := NewWriter(emit)
	for i := 0; i < n; i++ {
		e := fileEntry(bigName(i), i)
		list := []Entry{e}
		if change != nil {
			list = change(i, &e)
		}
		for _, e := range list {
			if err := w.Add(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	root, err := w.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// sampleEntries covers every kind and the edge values of each field.
func sampleEntries() []Entry {
	return []Entry{
		{Name: "a.txt", Kind: KindFile, Ino: 1<<62 | 2, Mode: 0o644, UID: 1000, GID: 100, Size: 5,
			Mtime: epoch, Ctime: epoch.Add(time.Nanosecond), Ref: blobstore.RefOf([]byte("hello")), StoredSize: 94},
		{Name: "empty-uncommitted", Kind: KindFile, Ino: 1<<62 | 3, Mode: 0o600,
			Mtime: time.Unix(0, 0).UTC(), Ctime: time.Unix(-1, 999999999).UTC()},
		{Name: "link", Kind: KindSymlink, Ino: 1<<62 | 4, Mode: 0o777, Size: 9, Mtime: epoch, Ctime: epoch, Target: "../a.txt/"},
		{Name: "sub", Kind: KindDir, Ino: 1<<62 | 5, Mode: 0o7755, UID: 0xffffffff, GID: 0xffffffff,
			Mtime: epoch, Ctime: epoch, Ref: blobstore.RefOf([]byte("a tree"))},
		{Name: "\u00e9t\u00e9 \x01\xff", Kind: KindFile, Ino: ^uint64(0), Size: 1<<63 - 1, StoredSize: 1<<63 - 1,
			Mtime: time.Time{}.UTC(), Ctime: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Ref: blobstore.RefOf(nil)},
	}
}
