package blobstore

import (
	"context"
	"io"
	"time"
)

// Driver holds raw blobs, and a few named objects beside them, on one
// volume: a local directory (localfs) or a prefix in an S3 bucket (s3).
// Raw means raw: a driver stores and returns exactly the bytes it is
// given, with no crypto and no verification; integrity is checked above it.
//
// Not found is always reported with an error that satisfies
// errors.Is(err, fs.ErrNotExist). Every method may be called from many
// goroutines at once.
type Driver interface {
	// RawStore stores the bytes read from content under ref, replacing any
	// blob stored under ref before.
	//
	// Atomic: a reader sees the old blob or the whole new one, never a
	// partial one. If content returns an error, or ctx is cancelled, before
	// io.EOF, nothing is stored, the old blob (if any) is left as it was, and
	// the error is returned. When RawStore returns nil the blob is durable:
	// it survives a crash or power loss from then on (unless ctx comes from
	// WithDeferredSync: then from the next Sync on).
	//
	// Idempotent: storing the same bytes twice leaves one copy.
	RawStore(ctx context.Context, ref Ref, content io.Reader) error

	// RawFetch opens the blob stored under ref for reading from its start.
	// It returns an fs.ErrNotExist error if there is none. The caller must
	// close the reader. The bytes returned are those given to RawStore,
	// unverified: bit rot is the caller's to detect.
	RawFetch(ctx context.Context, ref Ref) (io.ReadCloser, error)

	// Stat returns the stored size and modification time of the blob under
	// ref, or an fs.ErrNotExist error. It reads no blob content.
	Stat(ctx context.Context, ref Ref) (BlobInfo, error)

	// List calls fn once for every stored blob, in ascending ref order, with
	// what Stat would return for it. Blobs stored or removed while List
	// runs may or may not be seen. Returning an error from fn stops the
	// listing and List returns that error. Listing an empty volume is not
	// an error.
	List(ctx context.Context, fn func(BlobInfo) error) error

	// Remove deletes the blob under ref. It returns an fs.ErrNotExist error
	// if there is none, so a second Remove of the same ref reports that;
	// callers that only want the blob gone may ignore it. Atomic: readers
	// that opened the blob before keep reading the whole old blob. The blob
	// is gone for every reader and List at once; when Remove returns nil the
	// removal is durable (under WithDeferredSync, once the next Sync
	// returned nil: until then a power loss may bring the blob back whole).
	Remove(ctx context.Context, ref Ref) error

	// PutObject stores the bytes read from content as the named object
	// name (see CheckObjectName), replacing any object of that name. Named
	// objects are a namespace apart from blobs: List never reports one, and
	// ListObjects never reports a blob. A name that is not valid is an
	// ErrInvalidObjectName error, and nothing is stored.
	//
	// Atomic and durable as RawStore is: a reader sees the old object or the
	// whole new one; a content error or a cancelled ctx before io.EOF stores
	// nothing and leaves the old object as it was; when PutObject returns nil
	// the object survives a crash or power loss (under WithDeferredSync,
	// once the next Sync returned nil). Idempotent.
	PutObject(ctx context.Context, name string, content io.Reader) error

	// GetObject opens the named object for reading from its start. It
	// returns an fs.ErrNotExist error if there is none, and an
	// ErrInvalidObjectName error for a name that is not valid. The caller
	// must close the reader. If the object is replaced or removed while it is
	// read, the reader reads the old object to its end or fails; it never
	// mixes two versions.
	GetObject(ctx context.Context, name string) (io.ReadCloser, error)

	// ListObjects calls fn once for every named object whose name starts
	// with prefix (compared byte by byte; "" lists them all), in ascending
	// name order. Objects stored or removed while it runs may or may not be
	// seen. Returning an error from fn stops the listing and ListObjects
	// returns that error. No object matching is not an error.
	ListObjects(ctx context.Context, prefix string, fn func(ObjectInfo) error) error

	// RemoveObject deletes the named object. It returns an fs.ErrNotExist
	// error if there is none (so a second RemoveObject reports that), and an
	// ErrInvalidObjectName error for a name that is not valid. When it
	// returns nil the removal is durable. Readers that opened the object
	// before read it to its end or fail, as for a replace.
	RemoveObject(ctx context.Context, name string) error

	// Sync makes durable everything this Driver value stored under a
	// WithDeferredSync context with a RawStore or PutObject, or removed with
	// a Remove, that returned before Sync was called. When Sync returns nil
	// those blobs and objects survive a crash or power loss, and those
	// removals too. If it fails, some may be durable and
	// some not: treat none as durable; the next Sync tries them all again.
	// With nothing deferred it has nothing to do. It may be called any
	// number of times, concurrently with stores and with other Syncs. A
	// driver whose stores are always durable at return does nothing.
	Sync(ctx context.Context) error

	// RoutingCost says how expensive reads from this volume are, relative to
	// other drivers: a local disk is cheap (10), a network store is not
	// (100 or more). Of the volumes that hold a blob, reads go to the
	// cheapest. How to read the volume is said by Properties, not by this
	// number.
	RoutingCost() int

	// Properties says what kind of volume this is (see Properties). It does
	// no I/O and returns the same value every time.
	Properties() Properties
}

// BlobInfo describes a stored blob, as Stat and List report it.
type BlobInfo struct {
	Ref Ref
	// Size is the stored size in bytes.
	Size int64
	// ModTime is when the blob was last stored (a replace by RawStore sets
	// it again), by the volume's clock and to its resolution: a second on
	// S3. A grace period measured against it must allow for both.
	ModTime time.Time
}

// RandomAccessDriver is a Driver that can read part of a blob without
// reading what comes before it. diskaccess uses it for random-access reads;
// a Driver without it is read from the start and skipped forward (see
// SequentialReaderAt).
type RandomAccessDriver interface {
	Driver

	// RawOpen opens the blob under ref for reads at any offset. It returns
	// an fs.ErrNotExist error if there is none. The returned reader keeps
	// reading the blob that was stored when RawOpen ran, even if the blob is
	// replaced or removed afterwards. The caller must close it.
	RawOpen(ctx context.Context, ref Ref) (RawReaderAt, error)
}

// RawReaderAt reads a stored blob at any offset. ReadAt follows io.ReaderAt
// and may be called from many goroutines at once.
type RawReaderAt interface {
	io.ReaderAt
	io.Closer
	// Size is the stored size of the blob in bytes.
	Size() int64
}

// Sweeper is a Driver that can clean up after a crash: writes that never
// finished leave temporary files behind. diskaccess calls Sweep when it
// mounts a volume.
type Sweeper interface {
	// Sweep removes what interrupted writes left behind and returns how many
	// leftovers it removed. It never removes a stored blob, nor the temporary
	// file of a write still in progress (in this or another process).
	Sweep(ctx context.Context) (removed int, err error)
}
