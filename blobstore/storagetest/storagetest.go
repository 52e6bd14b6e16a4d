// Package storagetest is the conformance suite for blobstore.Driver. Every
// driver's tests call Run once:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) blobstore.Driver { return newDriver(t) })
//	}
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// Run runs every conformance test against fresh drivers from newDriver,
// which must return an empty volume each time it is called.
func Run(t *testing.T, newDriver func(t *testing.T) blobstore.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d blobstore.Driver)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyBlob", testEmptyBlob},
		{"LargeBlob", testLargeBlob},
		{"NotFound", testNotFound},
		{"StoreTwice", testStoreTwice},
		{"Replace", testReplace},
		{"FailedStoreLeavesNothing", testFailedStoreLeavesNothing},
		{"FailedReplaceKeepsOld", testFailedReplaceKeepsOld},
		{"CancelledStore", testCancelledStore},
		{"ListOrderAndSizes", testListOrderAndSizes},
		{"ListStopsOnError", testListStopsOnError},
		{"RemoveTwice", testRemoveTwice},
		{"ConcurrentStores", testConcurrentStores},
		{"ReadersNeverSeePartialBlobs", testReadersNeverSeePartial},
		{"RandomAccess", testRandomAccess},
		{"Properties", testProperties},
		{"ModTimes", testModTimes},
		{"Space", testSpace},
	}
	for _, tc := range slices.Concat(tests, objectTests, syncTests, stageTests) {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newDriver(t))
		})
	}
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// testRef makes a distinct ref; drivers do not check that content hashes to
// its ref, so tests may store anything under any ref.
func testRef(i int) blobstore.Ref {
	return blobstore.RefOf([]byte(fmt.Sprintf("storagetest ref %d", i)))
}

func store(t *testing.T, d blobstore.Driver, ref blobstore.Ref, content []byte) {
	t.Helper()
	if err := d.RawStore(context.Background(), ref, bytes.NewReader(content)); err != nil {
		t.Fatalf("RawStore(%s): %v", ref, err)
	}
}

func fetch(t *testing.T, d blobstore.Driver, ref blobstore.Ref) []byte {
	t.Helper()
	rc, err := d.RawFetch(context.Background(), ref)
	if err != nil {
		t.Fatalf("RawFetch(%s): %v", ref, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	return got
}

func assertContent(t *testing.T, d blobstore.Driver, ref blobstore.Ref, want []byte) {
	t.Helper()
	if got := fetch(t, d, ref); !bytes.Equal(got, want) {
		t.Fatalf("RawFetch(%s) = %d bytes, want the %d bytes stored", ref, len(got), len(want))
	}
	info, err := d.Stat(context.Background(), ref)
	if err != nil || info.Size != int64(len(want)) || info.Ref != ref {
		t.Fatalf("Stat(%s) = %+v, %v; want size %d, nil", ref, info, err, len(want))
	}
}

func assertNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: err = %v, want one satisfying errors.Is(err, fs.ErrNotExist)", what, err)
	}
}

func listAll(t *testing.T, d blobstore.Driver) ([]blobstore.Ref, []int64) {
	t.Helper()
	var refs []blobstore.Ref
	var sizes []int64
	err := d.List(context.Background(), func(info blobstore.BlobInfo) error {
		refs = append(refs, info.Ref)
		sizes = append(sizes, info.Size)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return refs, sizes
}

func testRoundTrip(t *testing.T, d blobstore.Driver) {
	content := randomBytes(1, 100_000)
	store(t, d, testRef(1), content)
	assertContent(t, d, testRef(1), content)
}

func testEmptyBlob(t *testing.T, d blobstore.Driver) {
	store(t, d, testRef(1), nil)
	assertContent(t, d, testRef(1), []byte{})
}

func testLargeBlob(t *testing.T, d blobstore.Driver) {
	content := randomBytes(2, 9<<20+7)
	store(t, d, testRef(1), content)
	assertContent(t, d, testRef(1), content)
}

func testNotFound(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	ref := testRef(404)
	_, err := d.RawFetch(ctx, ref)
	assertNotExist(t, "RawFetch of a missing blob", err)
	_, err = d.Stat(ctx, ref)
	assertNotExist(t, "Stat of a missing blob", err)
	assertNotExist(t, "Remove of a missing blob", d.Remove(ctx, ref))
	if ra, ok := d.(blobstore.RandomAccessDriver); ok {
		_, err = ra.RawOpen(ctx, ref)
		assertNotExist(t, "RawOpen of a missing blob", err)
	}
}

func testStoreTwice(t *testing.T, d blobstore.Driver) {
	content := randomBytes(3, 5000)
	store(t, d, testRef(1), content)
	store(t, d, testRef(1), content)
	assertContent(t, d, testRef(1), content)
	if refs, _ := listAll(t, d); len(refs) != 1 {
		t.Fatalf("after storing one blob twice List shows %d blobs, want 1", len(refs))
	}
}

func testReplace(t *testing.T, d blobstore.Driver) {
	store(t, d, testRef(1), randomBytes(4, 5000))
	newer := randomBytes(5, 7000)
	store(t, d, testRef(1), newer)
	assertContent(t, d, testRef(1), newer)
}

// failingReader fails every read, after what newFailingReader puts before
// it, as a network or a verifying reader would when content turns out
// wrong.
type failingReader struct {
	err error
}

var errInjected = errors.New("storagetest: injected read error")

func newFailingReader(content []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(content), &failingReader{err: errInjected})
}

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func testFailedStoreLeavesNothing(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	err := d.RawStore(ctx, testRef(1), newFailingReader(randomBytes(6, 300_000)))
	if !errors.Is(err, errInjected) {
		t.Fatalf("RawStore with a failing reader: err = %v, want the reader's error", err)
	}
	_, err = d.Stat(ctx, testRef(1))
	assertNotExist(t, "Stat after a failed RawStore", err)
	if refs, _ := listAll(t, d); len(refs) != 0 {
		t.Fatalf("after a failed RawStore List shows %d blobs, want 0", len(refs))
	}
}

func testFailedReplaceKeepsOld(t *testing.T, d blobstore.Driver) {
	old := randomBytes(7, 4000)
	store(t, d, testRef(1), old)
	err := d.RawStore(context.Background(), testRef(1), newFailingReader(randomBytes(8, 9000)))
	if !errors.Is(err, errInjected) {
		t.Fatalf("RawStore with a failing reader: err = %v, want the reader's error", err)
	}
	assertContent(t, d, testRef(1), old)
}

func testCancelledStore(t *testing.T, d blobstore.Driver) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.RawStore(ctx, testRef(1), bytes.NewReader(randomBytes(9, 1000))); err == nil {
		t.Fatal("RawStore with a cancelled context succeeded")
	}
	_, err := d.Stat(context.Background(), testRef(1))
	assertNotExist(t, "Stat after a cancelled RawStore", err)
}

func testListOrderAndSizes(t *testing.T, d blobstore.Driver) {
	if refs, _ := listAll(t, d); len(refs) != 0 {
		t.Fatalf("an empty volume lists %d blobs", len(refs))
	}
	want := map[blobstore.Ref]int64{}
	for i := range 50 {
		size := 10 + i*37
		store(t, d, testRef(i), randomBytes(uint64(i), size))
		want[testRef(i)] = int64(size)
	}
	refs, sizes := listAll(t, d)
	if len(refs) != len(want) {
		t.Fatalf("List returned %d blobs, want %d", len(refs), len(want))
	}
	for i, ref := range refs {
		if i > 0 && refs[i-1].Compare(ref) >= 0 {
			t.Fatalf("List is not in ascending ref order: %s before %s", refs[i-1], ref)
		}
		if want[ref] != sizes[i] {
			t.Fatalf("List gives %s size %d, want %d", ref, sizes[i], want[ref])
		}
	}
}

func testListStopsOnError(t *testing.T, d blobstore.Driver) {
	for i := range 5 {
		store(t, d, testRef(i), []byte{byte(i)})
	}
	stop := errors.New("stop")
	calls := 0
	err := d.List(context.Background(), func(blobstore.BlobInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List with fn failing: err = %v after %d calls, want fn's error after 1", err, calls)
	}
}

func testRemoveTwice(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	store(t, d, testRef(1), []byte("x"))
	store(t, d, testRef(2), []byte("y"))
	if err := d.Remove(ctx, testRef(1)); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	assertNotExist(t, "second Remove", d.Remove(ctx, testRef(1)))
	_, err := d.RawFetch(ctx, testRef(1))
	assertNotExist(t, "RawFetch after Remove", err)
	assertContent(t, d, testRef(2), []byte("y"))
}

func testConcurrentStores(t *testing.T, d blobstore.Driver) {
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			// Half the writers race on the same ref with the same bytes.
			ref, seed := testRef(i), uint64(i)
			if i%2 == 0 {
				ref, seed = testRef(1000), 1000
			}
			errs <- d.RawStore(context.Background(), ref, bytes.NewReader(randomBytes(seed, 20_000)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent RawStore: %v", err)
		}
	}
	assertContent(t, d, testRef(1000), randomBytes(1000, 20_000))
	if refs, _ := listAll(t, d); len(refs) != 21 {
		t.Fatalf("List shows %d blobs after 40 stores of 21 refs", len(refs))
	}
}

func testReadersNeverSeePartial(t *testing.T, d blobstore.Driver) {
	versions := [][]byte{randomBytes(10, 1<<20), randomBytes(11, 1<<20+1)}
	store(t, d, testRef(1), versions[0])
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range 20 {
			store(t, d, testRef(1), versions[(i+1)%2])
		}
	})
	for {
		select {
		case <-done:
			wg.Wait()
			return
		default:
		}
		got := fetch(t, d, testRef(1))
		if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
			t.Fatalf("a reader saw %d bytes that are neither version (a partial blob)", len(got))
		}
	}
}

func testRandomAccess(t *testing.T, d blobstore.Driver) {
	ra, ok := d.(blobstore.RandomAccessDriver)
	if !ok {
		t.Logf("%T reads only from the start: nothing to test", d)
		return
	}
	content := randomBytes(12, 300_000)
	store(t, d, testRef(1), content)
	r, err := ra.RawOpen(context.Background(), testRef(1))
	if err != nil {
		t.Fatalf("RawOpen: %v", err)
	}
	defer r.Close()
	if r.Size() != int64(len(content)) {
		t.Fatalf("Size() = %d, want %d", r.Size(), len(content))
	}
	for _, off := range []int64{0, 1, 4095, 65536, 299_990} {
		buf := make([]byte, 10)
		n, err := r.ReadAt(buf, off)
		if n != 10 || (err != nil && err != io.EOF) || !bytes.Equal(buf, content[off:off+10]) {
			t.Fatalf("ReadAt(10 bytes, %d) = %d, %v or wrong bytes", off, n, err)
		}
	}
	if n, err := r.ReadAt(make([]byte, 10), int64(len(content))-5); n != 5 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v; want 5, io.EOF", n, err)
	}
	// An open reader keeps the blob it opened, whatever happens to the name.
	if err := d.Remove(context.Background(), testRef(1)); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	buf := make([]byte, 100)
	if _, err := r.ReadAt(buf, 1000); err != nil || !bytes.Equal(buf, content[1000:1100]) {
		t.Fatalf("ReadAt after Remove: %v or wrong bytes", err)
	}
}

// maxReadAhead bounds a sane read-ahead: each frame in flight holds up to
// 1 MiB of buffers.
const maxReadAhead = 256

func testProperties(t *testing.T, d blobstore.Driver) {
	p := d.Properties()
	if p.ReadAhead < 0 || p.ReadAhead > maxReadAhead {
		t.Fatalf("Properties().ReadAhead = %d, want 0..%d frames", p.ReadAhead, maxReadAhead)
	}
	if again := d.Properties(); again != p {
		t.Fatalf("Properties() changed between calls: %+v, then %+v", p, again)
	}
	if p.Remote && d.RoutingCost() < 100 {
		t.Fatalf("a remote driver has RoutingCost %d, want 100 or more (reads should go to local copies first)", d.RoutingCost())
	}
}

// testSpace: a driver that reports its volume's room reports a sane one,
// which a stored blob does not make larger.
func testSpace(t *testing.T, d blobstore.Driver) {
	reporter, ok := d.(blobstore.SpaceReporter)
	if !ok {
		t.Logf("%T is no blobstore.SpaceReporter (its volume has no size of its own): nothing to test", d)
		return
	}
	space, err := reporter.Space(context.Background())
	if err != nil {
		t.Fatalf("Space: %v", err)
	}
	if space.BlockSize == 0 || space.Blocks == 0 || space.BlocksFree > space.Blocks || space.BlocksAvail > space.BlocksFree ||
		space.FilesFree > space.Files {
		t.Fatalf("Space() = %+v: want a block size, a size, and free <= size, avail <= free, free files <= files", space)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := reporter.Space(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Space with a cancelled context: %v, want context.Canceled", err)
	}
}

// clockSlack is how far a volume's modification times may stray from this
// machine's clock: S3 keeps whole seconds, and a server's clock may be off
// by a little.
const clockSlack = 2 * time.Second

// assertModTimeNear fails unless got is a time within [before, after],
// widened by clockSlack.
func assertModTimeNear(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Before(before.Add(-clockSlack)) || got.After(after.Add(clockSlack)) {
		t.Fatalf("%s: modification time %v, want one between %v and %v", what, got, before, after)
	}
}

func testModTimes(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	before := time.Now()
	store(t, d, testRef(1), []byte("first"))
	after := time.Now()
	first, err := d.Stat(ctx, testRef(1))
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	assertModTimeNear(t, "Stat after RawStore", first.ModTime, before, after)
	listed := listInfos(t, d)
	if len(listed) != 1 || !listed[0].ModTime.Equal(first.ModTime) {
		t.Fatalf("List = %+v, want the one blob with Stat's modification time %v", listed, first.ModTime)
	}
	store(t, d, testRef(1), []byte("second"))
	second, err := d.Stat(ctx, testRef(1))
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if second.ModTime.Before(first.ModTime) {
		t.Fatalf("a replace moved the modification time back: %v, then %v", first.ModTime, second.ModTime)
	}
	assertModTimeNear(t, "Stat after a replace", second.ModTime, after, time.Now())
}

func listInfos(t *testing.T, d blobstore.Driver) []blobstore.BlobInfo {
	t.Helper()
	var infos []blobstore.BlobInfo
	err := d.List(context.Background(), func(info blobstore.BlobInfo) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return infos
}
