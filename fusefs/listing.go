package fusefs

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/metastore"
)

// listPage is how many entries a listing reads from the metadata store at
// a time.
const listPage = 4096

// A listing is an open directory whose entries come from the metadata
// store: ref/ and the directories of files/. It reads them a page at a
// time, and a page ahead of the kernel: a goroutine of its own reads page
// n+1 (the store's iteration, the hex names) while READDIR requests copy
// out page n, so that on two cores the two overlap. The store is read in
// a transaction per page, so an `ls` left waiting holds nothing open, and
// each page starts after the last entry of the one before: an entry added
// while the listing runs is listed at most once (if it sorts after where
// the listing is), and none that existed before it started is missed.
//
// Offsets count entries from the start; a seek starts the listing again
// and skips that many.
type listing struct {
	fsys  *FS
	what  string            // for errors: "listing ref/"
	pages func() pageReader // a reader of the directory from its start
	head  []string          // listed before the pages (ref/'s written names)
	skip  map[string]bool   // names in head, not listed again from the pages

	heads []fuse.DirEntry // head, as entries still to list
	pf    *prefetcher     // nil until the first READDIR
	cur   dirPage
	next  int // cur.entries[next:] are still to list
	curNo int // cur's number, counting every page taken (and rewinds)

	// The READDIR reply being filled (its request's context, which go-fuse
	// makes for each request; kept here, its address is not reused), and
	// what is left of its budget (fits).
	reply  *fuse.Context
	budget int

	// READDIRPLUS (Lookup): the directory, its own lookup, and its
	// lookup of a run of the page's entries at once (nil: one at a time).
	dir         *fs.Inode
	lookup      func(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno)
	lookupBatch batchLookuper
	win         lookupWindow
}

// A batchLookuper looks entries up (a run of a listing's page, in
// order) in one read of the metadata store, for the lookups that a
// READDIRPLUS reply makes of each.
type batchLookuper func(ctx context.Context, entries []fuse.DirEntry) (lookedUp, error)

// lookedUp answers the lookup of entry k of a batchLookuper's run.
type lookedUp interface {
	lookup(ctx context.Context, k int, out *fuse.EntryOut) (*fs.Inode, syscall.Errno)
}

// lookupWindow is the run of the current page that one READDIRPLUS request
// has looked up: cur.entries[from:to], read at once during that request
// (ctx). A later request reads its own run again, so that what it answers
// is as fresh as a lookup of its own would be: the kernel holds the
// directory's lock for a request, so nothing is removed from the
// directory while it runs, but between two of them anything may be.
type lookupWindow struct {
	ctx      context.Context
	page     int // the page's curNo
	from, to int
	found    lookedUp
	used     int // lookups answered in ctx
	lastUsed int // and in the request before
}

var pageSize = os.Getpagesize()

// errKnown is the answer to READDIRPLUS's lookup of an entry the kernel
// has: go-fuse then gives the entry no attributes (node ID 0), which the
// kernel takes as "nothing to update", not as ENOENT.
const errKnown = syscall.EEXIST

// Window sizes: a READDIRPLUS reply of a page holds 18 ref/ entries, or
// about 25 with short names; a window reads as many as the last request
// used, within these bounds.
const (
	minLookupWindow = 16
	maxLookupWindow = 256
)

// A pageReader appends the next page of a directory's entries to buf and
// returns it, and whether it was the last; each call starts where the one
// before ended. Entries come with Off 0.
type pageReader func(ctx context.Context, buf []fuse.DirEntry) (page []fuse.DirEntry, last bool, err error)

var (
	_ fs.FileReaddirenter = (*listing)(nil)
	_ fs.FileSeekdirer    = (*listing)(nil)
	_ fs.FileReleasedirer = (*listing)(nil)
	_ fs.FileLookuper     = (*listing)(nil)
)

// newListing lists directory dir, whose own lookup is lookup, and batch
// its lookup of many entries at once (nil: none).
func newListing(f *FS, what string, head []string, pages func() pageReader, dir *fs.Inode, lookup func(context.Context, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno), batch batchLookuper) *listing {
	l := &listing{fsys: f, what: what, pages: pages, head: head, dir: dir, lookup: lookup, lookupBatch: batch}
	if len(head) > 0 {
		l.skip = make(map[string]bool, len(head))
		for _, name := range head {
			l.skip[name] = true
		}
	}
	l.rewind()
	return l
}

func (l *listing) rewind() {
	if l.pf != nil {
		l.pf.close()
	}
	l.heads = l.heads[:0]
	for _, name := range l.head {
		l.heads = append(l.heads, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG})
	}
	l.pf, l.cur, l.next = nil, dirPage{}, 0
	l.curNo++
	l.win = lookupWindow{lastUsed: l.win.lastUsed}
}

// Readdirent implements fs.FileReaddirenter. The entry returned stays
// valid until the next call (go-fuse copies it out at once).
func (l *listing) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if len(l.heads) > 0 {
		e := &l.heads[0]
		if !l.fits(ctx, e.Name) {
			return nil, 0
		}
		l.heads = l.heads[1:]
		return e, 0
	}
	for {
		for l.next < len(l.cur.entries) {
			e := &l.cur.entries[l.next]
			if l.skip[e.Name] {
				l.next++
				continue
			}
			if !l.fits(ctx, e.Name) {
				return nil, 0
			}
			l.next++
			return e, 0
		}
		if err := l.cur.err; err != nil {
			l.cur.err = nil // the page is the last: the listing ends here
			return nil, l.fsys.errno(l.what, err)
		}
		if l.cur.last {
			return nil, 0
		}
		if l.pf == nil {
			l.pf = startPrefetch(l.pages())
		}
		l.pf.recycle(l.cur.entries)
		l.cur, l.next = l.pf.page(), 0
		l.curNo++
	}
}

// Lookup implements fs.FileLookuper: READDIRPLUS looks up each entry that
// Readdirent returns, right after. An entry the kernel has already (it
// looked it up, and has not forgotten it) gets no attributes: the kernel
// keeps what it has, as it would with a READDIR, and a second ls -l costs
// the daemon no more than a second ls -f. The others are looked up a run
// of the page at a time (lookupWindow), in one read of the store rather
// than one each; a name that is not the page's (ref/'s written names, the
// replay of an interrupted reply) takes the directory's own lookup.
func (l *listing) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if l.dir.GetChild(name) != nil {
		return nil, errKnown
	}
	i := l.next - 1
	if l.lookupBatch == nil || i < 0 || l.cur.entries[i].Name != name {
		return l.lookup(ctx, name, out)
	}
	w := &l.win
	if w.ctx != ctx {
		w.ctx, w.lastUsed, w.used = ctx, w.used, 0
		w.found = nil
	}
	w.used++
	if w.found == nil || w.page != l.curNo || i < w.from || i >= w.to {
		n := min(max(w.lastUsed, minLookupWindow), maxLookupWindow)
		run := l.cur.entries[i:min(i+n, len(l.cur.entries))]
		found, err := l.lookupBatch(ctx, run)
		if err != nil {
			w.found = nil
			return l.lookup(ctx, name, out) // which says what is wrong
		}
		w.page, w.from, w.to, w.found = l.curNo, i, i+len(run), found
	}
	return w.found.lookup(ctx, i-w.from, out)
}

// fits reports whether the entry named name goes in the reply being
// filled, and if so counts it. A READDIR reply of a page carries no more
// entries than a READDIRPLUS reply of its size could (READDIRPLUS is what
// a stat'ing reader gets, and plain READDIR the others, request by
// request: the mount asks for READDIRPLUS_AUTO). The kernel may take only
// part of a reply, and ask for the rest with a READDIRPLUS; go-fuse then
// answers from the reply it kept, and loses whatever does not fit
// (v2.12.1, which has no READDIRPLUS_AUTO of its own). That happens to a
// reader whose buffer is smaller than a page (musl's readdir has 2 KiB):
// the kernel asks for a page at least, and for larger buffers as large a
// reply as the buffer, which then takes all of it. Returning no entry
// ends a reply: never the first of one, since an empty reply is the end
// of the directory.
func (l *listing) fits(ctx context.Context, name string) bool {
	fc, ok := ctx.(*fuse.Context)
	if !ok {
		return true // Seekdir's skipping
	}
	n := plusEntrySize(name)
	if fc != l.reply {
		size, plain := l.fsys.plainReplySize(fc)
		l.reply, l.budget = fc, math.MaxInt
		if plain && int(size) <= pageSize {
			l.budget = int(size)
		}
	} else if l.budget < n {
		return false
	}
	l.budget -= n
	return true
}

// Seekdir implements fs.FileSeekdirer.
func (l *listing) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	l.rewind()
	for ; off > 0; off-- {
		e, errno := l.Readdirent(context.Background()) // no reply's budget
		if errno != 0 {
			return errno
		}
		if e == nil {
			break
		}
	}
	return 0
}

// Releasedir implements fs.FileReleasedirer: the reading goroutine stops.
func (l *listing) Releasedir(ctx context.Context, flags uint32) {
	if l.pf != nil {
		l.pf.close()
		l.pf = nil
	}
}

// dirPage is one page of a listing, as the prefetcher hands it over.
type dirPage struct {
	entries []fuse.DirEntry
	last    bool
	err     error // after entries
}

// prefetcher runs a pageReader in its own goroutine, one page ahead of
// the listing that takes its pages: it reads a page, then waits until the
// listing takes it.
type prefetcher struct {
	pages     chan dirPage         // unbuffered: the page read waits here
	free      chan []fuse.DirEntry // listed pages, for their buffers
	cancel    context.CancelFunc   // stops the goroutine, and a read under way
	done      chan struct{}        // closed when the goroutine has returned
	closeOnce sync.Once
}

func startPrefetch(read pageReader) *prefetcher {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prefetcher{
		pages:  make(chan dirPage),
		free:   make(chan []fuse.DirEntry, 2),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go p.run(ctx, read)
	return p
}

func (p *prefetcher) run(ctx context.Context, read pageReader) {
	defer close(p.done)
	defer close(p.pages)
	for ctx.Err() == nil {
		var buf []fuse.DirEntry
		select {
		case buf = <-p.free:
		default:
		}
		entries, last, err := read(ctx, buf[:0])
		select {
		case p.pages <- dirPage{entries: entries, last: last || err != nil, err: err}:
		case <-ctx.Done():
			return
		}
		if last || err != nil {
			return
		}
	}
}

// page waits for the next page.
func (p *prefetcher) page() dirPage {
	page, ok := <-p.pages
	if !ok {
		return dirPage{last: true}
	}
	return page
}

// recycle hands back a listed page's buffer.
func (p *prefetcher) recycle(buf []fuse.DirEntry) {
	if cap(buf) == 0 {
		return
	}
	select {
	case p.free <- buf:
	default:
	}
}

// close stops the goroutine and waits for it: when the listing is
// released, nothing reads the store for it any more (the store may be
// closed next, at unmount).
func (p *prefetcher) close() {
	p.closeOnce.Do(p.cancel)
	<-p.done
}

// readPage runs list, which passes entries to add, until it has passed
// listPage of them: it reports whether list ended by itself (the last
// page).
func readPage[T any](list func(add func(T) error) error, add func(T)) (last bool, err error) {
	n := 0
	err = list(func(e T) error {
		add(e)
		if n++; n == listPage {
			return errPageFull
		}
		return nil
	})
	if errors.Is(err, errPageFull) {
		return false, nil
	}
	return err == nil, err
}

var errPageFull = errors.New("page full")

// refPages reads the refs of the blobs ref/ shows, in ref order.
func (f *FS) refPages() pageReader {
	var after blobstore.Ref
	visible := f.visibleFilter(context.Background()) // once per listing
	refs := make([]blobstore.Ref, 0, listPage)
	var names []byte
	return func(ctx context.Context, buf []fuse.DirEntry) ([]fuse.DirEntry, bool, error) {
		refs = refs[:0]
		last, err := readPage(func(add func(blobstore.Ref) error) error {
			if f.cfg.OnlyVolume {
				return f.cfg.Catalog.ListVolumeBlobs(ctx, f.cfg.Volume, after, add)
			}
			return f.cfg.Catalog.ListBlobs(ctx, after, visible, add)
		}, func(ref blobstore.Ref) { refs = append(refs, ref) })
		if len(refs) == 0 {
			return buf, last, err
		}
		after = refs[len(refs)-1]
		// One string holds the page's names: one allocation, not one each.
		names = names[:0]
		for _, ref := range refs {
			names = hex.AppendEncode(names, ref[:])
		}
		all := string(names)
		const n = 2 * blobstore.RefSize
		for i, ref := range refs {
			buf = append(buf, fuse.DirEntry{Name: all[i*n : (i+1)*n], Mode: syscall.S_IFREG, Ino: inoOf(ref)})
		}
		return buf, last, err
	}
}

// treePages reads the entries of directory dir of a files/ tree, in name
// order.
func (f *FS) treePages(dir uint64) pageReader {
	var after string
	return func(ctx context.Context, buf []fuse.DirEntry) ([]fuse.DirEntry, bool, error) {
		last, err := readPage(func(add func(metastore.Entry) error) error {
			return f.cfg.Tree.ReadDir(ctx, dir, after, add)
		}, func(e metastore.Entry) {
			buf = append(buf, fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: typeBits(e.Kind)})
			after = e.Name
		})
		return buf, last, err
	}
}
