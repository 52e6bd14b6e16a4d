package badger_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// useStore records n blobs on volume 1 and makes every third of them (in
// ref order) the content of a file; it returns their refs in ref order.
func useStore(t *testing.T, n int) (*badger.Store, []blobstore.Ref) {
	t.Helper()
	store, _, _ := newStore(t)
	var refs []blobstore.Ref
	for i := range n {
		refs = append(refs, recordBlob(t, store, fmt.Sprintf("blob %d", i), 1))
	}
	slices.SortFunc(refs, func(a, b blobstore.Ref) int { return bytes.Compare(a[:], b[:]) })
	root := folder(t, store, "default")
	for i := 0; i < n; i += 3 {
		file := create(t, store, root, fmt.Sprintf("f%d", i), badger.KindFile)
		commitContent(t, store, file.Ino, refs[i], 10, time.Unix(100, 0))
	}
	return store, refs
}

// TestEachBlobUseInChunks: read a few records at a time, the stream still
// gives every record once, in ref order, with the files that use it,
// whether the last chunk is full or not.
func TestEachBlobUseInChunks(t *testing.T) {
	defer badger.SetUseChunkForTest(8)()
	for _, n := range []int{0, 5, 48, 50} {
		store, refs := useStore(t, n)
		var seen []blobstore.Ref
		err := store.EachBlobUse(context.Background(), func(use badger.BlobUse) error {
			i := len(seen)
			seen = append(seen, use.Ref)
			if i < len(refs) && (use.Files != (i%3 == 0) || !slices.Equal(use.Volumes, []int{1})) {
				t.Errorf("%d records: record %d: %+v, want Files %v on volume 1", n, i, use, i%3 == 0)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seen, refs) {
			t.Errorf("%d records: EachBlobUse gave %d records, not each once in ref order", n, len(seen))
		}
	}
}

// TestEachBlobUseSeesWritesAhead: the stream keeps no read open while fn
// runs (so the writes fn makes, a collection's condemnations, do not pile
// up in Badger): a record removed or written during the stream, past the
// chunks read, is seen as it is when the stream gets there; one in a chunk
// read already is reported as it was.
func TestEachBlobUseSeesWritesAhead(t *testing.T) {
	defer badger.SetUseChunkForTest(8)()
	ctx := context.Background()
	store, refs := useStore(t, 50)
	var added blobstore.Ref
	for i := 0; ; i++ { // a new blob that sorts after refs[40]
		added = blobstore.RefOf(fmt.Appendf(nil, "added %d", i))
		if bytes.Compare(added[:], refs[40][:]) > 0 {
			break
		}
	}
	seen := map[blobstore.Ref]bool{}
	err := store.EachBlobUse(ctx, func(use badger.BlobUse) error {
		if use.Ref == refs[0] {
			// refs[4] is in this chunk, refs[40] in one not read yet.
			if _, _, err := store.Condemn(ctx, []blobstore.Ref{refs[4], refs[40]}, nil); err != nil {
				return err
			}
			meta := testMeta(added)
			if err := store.WriteBlobCreated(ctx, meta, 1); err != nil {
				return err
			}
		}
		seen[use.Ref] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !seen[refs[4]] || seen[refs[40]] || !seen[added] || len(seen) != 50 {
		t.Errorf("seen refs[4] %v (condemned in its chunk: want true), refs[40] %v (condemned ahead: want false), the blob recorded ahead %v (want true), %d records (want 50)",
			seen[refs[4]], seen[refs[40]], seen[added], len(seen))
	}
}
