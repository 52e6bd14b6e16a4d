package fusefs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// errNotThisRef: content written under a hex name hashes to another ref.
var errNotThisRef = errors.New("content does not hash to its name")

// toErrno maps an error from the layers below to the errno a FUSE reply
// carries. It is the one place where that happens: go-fuse's own mapping
// does not unwrap errors.
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, diskaccess.ErrCorrupt): // before ErrNotExist: a lost blob is damage
		return syscall.EIO
	case errors.Is(err, diskaccess.ErrRefMismatch), errors.Is(err, errNotThisRef):
		return syscall.EIO
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	case errors.Is(err, diskaccess.ErrKeyNotAvailable):
		return syscall.EACCES
	case errors.As(err, new(*snapshot.TreeError)): // a lost tree blob too is damage
		return syscall.EIO
	case errors.Is(err, snapshot.ErrCorrupt), errors.Is(err, snapshot.ErrUnsupported):
		return syscall.EIO
	case errors.As(err, &errno): // ENOSPC, EROFS, EDQUOT... from the disk
		return errno
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, fs.ErrExist):
		return syscall.EEXIST
	}
	return syscall.EIO
}

// storing detaches work that stores a file (a commit at close or fsync, a
// copy on write) from the request's cancellation. The kernel interrupts a
// request when the caller gets any signal, and Go programs get one all the
// time (SIGURG, for preemption): close(2) must not fail half way because
// of that, and it is not retried on EINTR. With a Commit configured, what
// is stored waits for the group commit to be fsynced.
func (f *FS) storing(ctx context.Context) context.Context {
	ctx = context.WithoutCancel(ctx)
	if f.cfg.Commit != nil {
		ctx = blobstore.WithDeferredSync(ctx)
	}
	return ctx
}

// durable makes what was stored so far durable if the contract says it
// must be by now: at fsync, and with SyncOnClose at close too.
func (f *FS) durable(ctx context.Context, fsync bool) syscall.Errno {
	if f.cfg.Commit == nil || !fsync && !f.cfg.SyncOnClose {
		return 0
	}
	return f.errno("commit", f.cfg.Commit(context.WithoutCancel(ctx)))
}
