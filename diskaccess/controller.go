package diskaccess

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// Controller reads and writes blobs on mounted volumes and keeps the
// metadata store in step. All methods are safe for concurrent use.
type Controller struct {
	metadataStore MetadataStore
	frameShift    uint8
	now           func() time.Time
	frameCache    *FrameCache // for OpenBlob readers; nil: none

	mu      sync.RWMutex // guards mounted
	mounted map[int]blobstore.Driver

	refLocks refLocks // serializes writers (and replicators) of one ref
	damage   damageReports

	noSweep  bool      // Mount sweeps no volume (WithoutSweep)
	spoolDir string    // where BlobWriters stage blobs for drivers that cannot (see blobstore.Stage)
	frames   sync.Pool // *[]byte of one frame's capacity, for BlobWriters
	seals    sync.Pool // *sealBuffers, for BlobWriters
}

// Option changes a Controller's defaults.
type Option func(*Controller)

// WithFrameShift sets the frame size of new blobs to 1<<shift bytes
// (16..20). Blobs already stored keep theirs: it is in their header.
func WithFrameShift(shift uint8) Option {
	if shift < minFrameShift || shift > maxFrameShift {
		panic(fmt.Sprintf("diskaccess: frame shift %d out of range %d..%d", shift, minFrameShift, maxFrameShift))
	}
	return func(c *Controller) { c.frameShift = shift }
}

// WithFrameCache gives the BlobReaders that OpenBlob returns a shared cache
// of opened frames. Sequential Fetch does not use it.
func WithFrameCache(cache *FrameCache) Option {
	return func(c *Controller) { c.frameCache = cache }
}

// WithSpoolDir sets where blobs being written are staged for a volume
// whose driver cannot stage them itself (S3): "" (the default) is
// os.TempDir.
func WithSpoolDir(dir string) Option {
	return func(c *Controller) { c.spoolDir = dir }
}

// WithoutSweep makes Mount leave a volume's abandoned temporary files
// alone (a store opened read-only writes nothing to its volumes).
func WithoutSweep() Option {
	return func(c *Controller) { c.noSweep = true }
}

// WithClock sets where creation times come from (tests pin it).
func WithClock(now func() time.Time) Option {
	return func(c *Controller) { c.now = now }
}

// New returns a Controller with no volume mounted.
func New(metadataStore MetadataStore, opts ...Option) *Controller {
	c := &Controller{
		metadataStore: metadataStore,
		frameShift:    DefaultFrameShift,
		now:           time.Now,
		mounted:       make(map[int]blobstore.Driver),
	}
	for _, opt := range opts {
		opt(c)
	}
	frameSize := 1 << c.frameShift
	c.frames.New = func() any { b := make([]byte, 0, frameSize); return &b }
	c.seals.New = func() any { return newSealBuffers(frameSize) }
	return c
}

// frameBuffer returns an empty pooled buffer of one frame's capacity.
func (c *Controller) frameBuffer() *[]byte {
	b := c.frames.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func (c *Controller) sealBuffers() *sealBuffers { return c.seals.Get().(*sealBuffers) }

// MetadataStore returns the store the Controller was made with.
func (c *Controller) MetadataStore() MetadataStore { return c.metadataStore }

// IsMounted reports whether volumeId is mounted.
func (c *Controller) IsMounted(volumeId int) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.mounted[volumeId]
	return ok
}

// BestVolumeId returns the mounted volume of volumeIds that is cheapest to
// read from (lowest RoutingCost; the first listed wins a tie), or an
// ErrNotMounted error if none is mounted.
func (c *Controller) BestVolumeId(volumeIds []int) (int, error) {
	order := c.ReadOrder(volumeIds)
	if len(order) == 0 {
		return 0, fmt.Errorf("none of volumes %v is mounted: %w", volumeIds, ErrNotMounted)
	}
	return order[0], nil
}

// ReadOrder returns the mounted volumes of volumeIds, cheapest to read from
// first (ties keep their order): where to read a blob from, and where to
// turn if that copy turns out damaged.
func (c *Controller) ReadOrder(volumeIds []int) []int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var order []int
	for _, id := range volumeIds {
		if _, ok := c.mounted[id]; ok {
			order = append(order, id)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return c.mounted[a].RoutingCost() - c.mounted[b].RoutingCost()
	})
	return order
}

func (c *Controller) driver(volumeId int) (blobstore.Driver, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	driver, ok := c.mounted[volumeId]
	if !ok {
		return nil, fmt.Errorf("volume %d: %w", volumeId, ErrNotMounted)
	}
	return driver, nil
}

// blobOnVolume returns the blob's metadata and the driver of volumeId,
// after checking that the metadata lists the blob there.
func (c *Controller) blobOnVolume(ctx context.Context, ref blobstore.Ref, keys KeyRing, volumeId int) (*BlobMeta, blobstore.Driver, error) {
	meta, err := c.metadataStore.QueryBlobMetadata(ctx, ref, keys)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(meta.Volumes, volumeId) {
		return nil, nil, &NotOnVolumeError{Ref: ref, Volume: volumeId, Volumes: meta.Volumes}
	}
	driver, err := c.driver(volumeId)
	if err != nil {
		return nil, nil, err
	}
	return meta, driver, nil
}

// rawOpen opens a stored blob for random access. A metadata entry without
// a stored blob is corruption (the blob was lost), not "not found". The
// reader outlives the request that opened it (a mount's file stays open),
// so it is not bound to that request's cancellation.
func rawOpen(ctx context.Context, driver blobstore.Driver, ref blobstore.Ref, volumeId int) (blobstore.RawReaderAt, error) {
	ctx = context.WithoutCancel(ctx)
	var src blobstore.RawReaderAt
	var err error
	if ra, ok := driver.(blobstore.RandomAccessDriver); ok {
		src, err = ra.RawOpen(ctx, ref)
	} else {
		src, err = blobstore.SequentialReaderAt(ctx, driver, ref)
	}
	if isNotExist(err) {
		return nil, missingError(ref, volumeId)
	}
	return src, err
}

// refLocks hands out one mutex per ref, kept only while in use.
type refLocks struct {
	mu    sync.Mutex // guards locks
	locks map[blobstore.Ref]*refLock
}

type refLock struct {
	mu    sync.Mutex
	users int // guarded by refLocks.mu
}

// lock locks ref and returns its unlock function.
func (l *refLocks) lock(ref blobstore.Ref) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[blobstore.Ref]*refLock)
	}
	rl := l.locks[ref]
	if rl == nil {
		rl = &refLock{}
		l.locks[ref] = rl
	}
	rl.users++
	l.mu.Unlock()

	rl.mu.Lock()
	return func() {
		rl.mu.Unlock()
		l.mu.Lock()
		rl.users--
		if rl.users == 0 {
			delete(l.locks, ref)
		}
		l.mu.Unlock()
	}
}

// LockRefs takes the locks of refs, which must be sorted and distinct,
// and returns the function that releases them all. A writer publishes and
// records a blob only under its ref's lock (BlobWriter.CommitWith, with
// the caller's RecordFunc; Replicate; Repair), so while a caller holds it
// no copy of the ref is published or recorded, and no writer decides that
// the blob is stored already and records a use of it: a garbage
// collection holds it while it condemns a blob and while it removes a
// condemned copy. Writers take one lock at a time; a caller holding more
// takes them in ref order, so that two such callers cannot deadlock. It
// must not be called again by a holder before it releases.
func (c *Controller) LockRefs(refs []blobstore.Ref) (unlock func()) {
	unlocks := make([]func(), 0, len(refs))
	for _, ref := range refs {
		unlocks = append(unlocks, c.refLocks.lock(ref))
	}
	return func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
}

// Driver returns the driver of a mounted volume (for the named objects
// stored beside its blobs), or an ErrNotMounted error.
func (c *Controller) Driver(volumeId int) (blobstore.Driver, error) { return c.driver(volumeId) }

// Sync makes every blob stored on volumeId before it durable, those
// stored with blobstore.WithDeferredSync included: a barrier before
// metadata that points to them is written.
func (c *Controller) Sync(ctx context.Context, volumeId int) error {
	driver, err := c.driver(volumeId)
	if err != nil {
		return err
	}
	return driver.Sync(ctx)
}
