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

	mu      sync.Mutex // guards bytes, order and entries
	bytes   int64
	order   *list.List // of *cachedFrame, most recent first
	entries map[frameKey]*list.Element

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

// NewFrameCache returns a cache holding at most maxBytes of plaintext.
func NewFrameCache(maxBytes int64) *FrameCache {
	return &FrameCache{maxBytes: maxBytes, order: list.New(), entries: make(map[frameKey]*list.Element)}
}

// get returns the cached plaintext of a frame; the slice must not be
// modified.
func (c *FrameCache) get(key frameKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	elem, ok := c.entries[key]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	c.order.MoveToFront(elem)
	return elem.Value.(*cachedFrame).plain, true
}

// put caches a copy of a frame's plaintext.
func (c *FrameCache) put(key frameKey, plain []byte) {
	if int64(len(plain)) > c.maxBytes {
		return
	}
	owned := append([]byte(nil), plain...)
	c.mu.Lock()
	defer c.mu.Unlock()
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
