package fusefs

import (
	"container/list"
	"context"
	"sync"

	"github.com/stofuse/stofuse/blobstore"
)

// treeCacheBytes bounds the tree blobs a mount keeps in memory. A lookup
// loads a blob per level of its directory's tree, and cp or find look up
// every name of a directory in turn: without a cache each would read and
// decrypt the same blobs again.
const treeCacheBytes = 16 << 20

// treeCache keeps the most recently loaded tree blobs in front of
// Snapshots.LoadTree. The snapshot package hashes every blob it is given
// against its ref, so what the cache holds is checked on every use as
// well. Safe for concurrent use.
type treeCache struct {
	source func(ctx context.Context, ref blobstore.Ref) ([]byte, error)

	mu    sync.Mutex // guards what follows; never held during a load
	byRef map[blobstore.Ref]*list.Element
	order *list.List // of *cachedTree, most recently used first
	bytes int
}

type cachedTree struct {
	ref   blobstore.Ref
	plain []byte
}

func newTreeCache(source func(ctx context.Context, ref blobstore.Ref) ([]byte, error)) *treeCache {
	return &treeCache{source: source, byRef: map[blobstore.Ref]*list.Element{}, order: list.New()}
}

// load is a snapshot.Loader. Two goroutines missing the same blob at once
// both load it: rare, and cheaper than making one wait on the other.
func (c *treeCache) load(ctx context.Context, ref blobstore.Ref) ([]byte, error) {
	if plain, ok := c.get(ref); ok {
		return plain, nil
	}
	plain, err := c.source(ctx, ref)
	if err != nil {
		return nil, err
	}
	c.put(ref, plain)
	return plain, nil
}

func (c *treeCache) get(ref blobstore.Ref) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byRef[ref]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*cachedTree).plain, true
	}
	return nil, false
}

func (c *treeCache) put(ref blobstore.Ref, plain []byte) {
	if len(plain) > treeCacheBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byRef[ref]; ok {
		return
	}
	c.byRef[ref] = c.order.PushFront(&cachedTree{ref: ref, plain: plain})
	c.bytes += len(plain)
	for c.bytes > treeCacheBytes {
		oldest := c.order.Remove(c.order.Back()).(*cachedTree)
		delete(c.byRef, oldest.ref)
		c.bytes -= len(oldest.plain)
	}
}
