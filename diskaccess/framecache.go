package diskaccess

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/stofuse/stofuse/blobstore"
)

// FrameCache keeps recently opened frames' plaintext, so that reads that
// land in the same frame (the kernel's consecutive 128 KiB reads through a
// mount, tar reading headers) open it once. Only authenticated plaintext
// is ever put in it. It is shared by every BlobReader of a Controller and
// bounded in bytes; safe for concurrent use.
type FrameCache struct {
	maxBytes int64

	mu      sync.Mutex // guards bytes, order, entries and loading
	bytes   int64
	order   *list.List // of *cachedFrame, most recent first
	entries map[frameKey]*list.Element
	loading map[frameKey]*frameLoad // frames being opened right now

	hits, misses atomic.Int64
}

type frameKey struct {
	ref   blobstore.Ref
	frame int
}

type cachedFrame struct {
	key   frameKey
	plain []byte // immutable once cached
}

// frameLoad is one frame being opened; plain and err are set before done
// is closed.
type frameLoad struct {
	done  chan struct{}
	plain []byte
	err   error
}

// NewFrameCache returns a cache holding at most maxBytes of plaintext.
func NewFrameCache(maxBytes int64) *FrameCache {
	return &FrameCache{maxBytes: maxBytes, order: list.New(),
		entries: make(map[frameKey]*list.Element), loading: make(map[frameKey]*frameLoad)}
}

// getOrLoad returns a frame's plaintext from the cache, or waits for the
// caller already opening it, or opens it with load (which must return a
// slice of its own) and caches it. No frame is opened twice at once. The
// returned slice must not be modified.
func (c *FrameCache) getOrLoad(key frameKey, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if elem, ok := c.entries[key]; ok {
		c.order.MoveToFront(elem)
		c.mu.Unlock()
		c.hits.Add(1)
		return elem.Value.(*cachedFrame).plain, nil
	}
	if inFlight, ok := c.loading[key]; ok {
		c.mu.Unlock()
		c.hits.Add(1)
		<-inFlight.done
		return inFlight.plain, inFlight.err
	}
	call := &frameLoad{done: make(chan struct{})}
	c.loading[key] = call
	c.mu.Unlock()
	c.misses.Add(1)

	call.plain, call.err = load()
	c.mu.Lock()
	delete(c.loading, key)
	if call.err == nil {
		c.insert(key, call.plain)
	}
	c.mu.Unlock()
	close(call.done)
	return call.plain, call.err
}

// has reports whether a frame is cached or being opened.
func (c *FrameCache) has(key frameKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, cached := c.entries[key]
	_, loading := c.loading[key]
	return cached || loading
}

// insert caches plain, which the cache then owns; the caller holds mu.
func (c *FrameCache) insert(key frameKey, owned []byte) {
	if int64(len(owned)) > c.maxBytes {
		return
	}
	if _, ok := c.entries[key]; ok {
		return
	}
	c.entries[key] = c.order.PushFront(&cachedFrame{key: key, plain: owned})
	c.bytes += int64(len(owned))
	for c.bytes > c.maxBytes {
		oldest := c.order.Back()
		frame := oldest.Value.(*cachedFrame)
		c.order.Remove(oldest)
		delete(c.entries, frame.key)
		c.bytes -= int64(len(frame.plain))
	}
}

// FrameCacheStats counts cache lookups.
type FrameCacheStats struct {
	Hits, Misses int64
}

// Stats returns the hits and misses so far.
func (c *FrameCache) Stats() FrameCacheStats {
	return FrameCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load()}
}
