package fusefs

import (
	"context"
	"sync"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// session is the content of a file being written, in ref/ (pendingNode)
// and in files/ (fileNode) alike: where the content is, what a commit
// stores, and what reads see. Its state says where the content is:
//
//	empty ──write, truncate──> spooling | streaming | checking ──commit──> stored
//	any ──a failure that sticks──> failed ──truncate to 0──> spooling | checking
//	any ──discard──> discarded ──write, truncate──> spooling (from nothing)
//
// A stored spool stays readable and a write makes it spooling again; a
// stored stream never changes; a stored check (a rewrite that matched)
// goes on hashing. The owner's rules come in as a sessionPolicy and a
// baseRule; what is the owner's own (names, handles, the tree record,
// held attributes) stays with the owner.
//
// Locks, the one rule for both halves of the mount: a session is guarded
// by two locks of its owner. The content lock serializes everything that
// changes or stores the content (writes, truncations, copy on write,
// commits, discards) and reads of a spool; it may be held across I/O, and
// every method but read expects the caller to hold it. The attribute lock
// guards what stat and lookup need (state, size, blob, err, and which
// spool there is) and the owner's own attributes; it is never held during
// I/O: no Badger write, no sealing, no spool read or write under it, so
// that stat never waits for the disk. Those fields change with both locks
// held (the session takes the attribute lock itself), so either lock is
// enough to read them. Order: content lock, then attribute lock; the
// policy's methods are called with the content lock only.
type session struct {
	fsys    *FS
	owner   sessionPolicy
	rule    baseRule
	content *sync.Mutex // the owner's content lock
	attrs   *sync.Mutex // the owner's attribute lock

	// Changed with both locks held.
	state sessionState
	size  int64         // the content's size, for stat
	blob  blobstore.Ref // empty: the blob the content starts from (zero: none); stored, discarded: the blob it was last stored as, or matched
	err   error         // failed: why
	spool *contentBuffer

	// The content lock holder's alone.
	stream *blobStream // streaming
	check  *hashCheck  // checking, and a stored check
}

// sessionState says where a session's content is.
type sessionState int

const (
	// empty: nothing changed; the content is blob (none if zero), of size.
	empty sessionState = iota
	// spooling: changed, held in the spool, stored by the next commit.
	spooling
	// streaming: written from its start and fed to the store as it comes
	// (ref/<hex>); the commit checks it against the name.
	streaming
	// checking: a rewrite of blob, only hashed; the commit compares.
	checking
	// stored: the content is blob, as committed. A spooled content keeps
	// its spool (reads serve it, writes change it again); a streamed one
	// has none and never changes; a check keeps its hash.
	stored
	// failed: the content cannot be stored (err), until a truncation to 0
	// starts it over. A spool it had stays readable.
	failed
	// discarded: the content was dropped. Reads see blob (the last one
	// stored); a write or truncation starts over from nothing.
	discarded
)

// baseRule is what a change does to the blob a session starts from.
type baseRule int

const (
	// copyOnWrite (files/): the first change copies the blob into a spool.
	copyOnWrite baseRule = iota
	// mustMatch (a rewrite of ref/<hex>): the content must come out as the
	// blob; it is only hashed, in order, and anything else is EPERM.
	mustMatch
)

// sessionPolicy is what the owner of a session decides. The session calls
// it with the content lock held, not the attribute lock.
type sessionPolicy interface {
	// named returns the ref the file's name says its content is
	// (ref/<hex>): a commit of other content fails, and content written
	// from its start is streamed into the store under it instead of
	// spooled. false: the name says nothing (files/, other names in ref/).
	named() (blobstore.Ref, bool)
	// collection returns the collection the content is stored in; "":
	// nowhere (a file of files/ removed while open), and a commit then
	// stores nothing and leaves the session clean.
	collection() string
}

// recorder is what a commit records in the owner's metadata (a blob's
// mtime, a tree record, an explicit store) before the session counts the
// content stored; if it fails, the commit fails. Either or both are set.
type recorder struct {
	// after runs once the blob is stored and recorded (ref/: the blob's
	// mtime).
	after func(ref blobstore.Ref, size int64, meta *diskaccess.BlobMeta) error
	// with records the content's blob itself, with the owner's part in
	// one metadata transaction, while the store holds the ref's lock
	// (diskaccess.BlobWriter.CommitWith; files/: the tree's commit; ref/:
	// the explicit store): created says the blob is new on the volume,
	// and with must record it too. If it fails, nothing of it is
	// recorded. It runs before after.
	with func(ctx context.Context, ref blobstore.Ref, size int64, meta *diskaccess.BlobMeta, created bool) error
}

// recordFunc is with as the store calls it (nil: the store records the
// blob alone).
func (r recorder) recordFunc(ref blobstore.Ref, size int64) diskaccess.RecordFunc {
	if r.with == nil {
		return nil
	}
	return func(ctx context.Context, meta *diskaccess.BlobMeta, created bool) error {
		return r.with(ctx, ref, size, meta, created)
	}
}

// newSession returns an empty session whose content is blob (zero: none),
// of size bytes.
func newSession(f *FS, owner sessionPolicy, rule baseRule, content, attrs *sync.Mutex, blob blobstore.Ref, size int64) *session {
	return &session{fsys: f, owner: owner, rule: rule, content: content, attrs: attrs, blob: blob, size: size}
}

// changed reports whether the content changed since the last commit (a
// failed content too: it was never stored). The caller holds either lock.
func (s *session) changed() bool {
	switch s.state {
	case spooling, streaming, checking, failed:
		return true
	}
	return false
}

// storedByStream: stored as it was written, with nothing kept to read or
// change but the blob. The caller holds either lock.
func (s *session) storedByStream() bool {
	return (s.state == stored || s.state == failed) && s.spool == nil && s.check == nil
}

// set moves to state with the content's new size; the caller holds the
// content lock.
func (s *session) set(state sessionState, size int64) {
	s.attrs.Lock()
	defer s.attrs.Unlock()
	s.state, s.size = state, size
	if state != failed {
		s.err = nil
	}
}

// replaceSpool makes spool the content's spool and closes the old one;
// the caller holds the content lock.
func (s *session) replaceSpool(spool *contentBuffer) {
	s.attrs.Lock()
	old := s.spool
	s.spool = spool
	s.attrs.Unlock()
	if old != nil {
		old.Close()
	}
}

// fail makes the session failed with err (nil: nothing happens) and stops
// a running stream; it returns err. The caller holds the content lock.
func (s *session) fail(err error) error {
	if err == nil {
		return nil
	}
	s.abandon()
	s.attrs.Lock()
	defer s.attrs.Unlock()
	s.state, s.err = failed, err
	return err
}

// abandon stops a running stream, storing nothing: the content is then an
// empty spool. The caller holds the content lock.
func (s *session) abandon() {
	if s.state != streaming {
		return
	}
	if s.stream != nil {
		s.stream.abandon()
		s.stream = nil
	}
	s.replaceSpool(newContentBuffer(&s.fsys.cfg))
	s.set(spooling, 0)
}

// discard drops the content: a stream stops, the spool goes. The caller
// holds the content lock.
func (s *session) discard() {
	if s.stream != nil {
		s.stream.abandon()
		s.stream = nil
	}
	s.check = nil
	s.replaceSpool(nil)
	s.set(discarded, 0)
}
