package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

func TestToErrno(t *testing.T) {
	corrupt := &diskaccess.CorruptBlobError{Ref: blobstore.RefOf(nil), Frame: 3, Region: diskaccess.RegionFrame, Err: errors.New("bad tag")}
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{fmt.Errorf("blob: %w", fs.ErrNotExist), syscall.ENOENT},
		{&diskaccess.NotOnVolumeError{}, syscall.ENOENT},
		{fmt.Errorf("read: %w", corrupt), syscall.EIO},
		{&diskaccess.CorruptBlobError{Err: diskaccess.ErrMissing}, syscall.EIO},
		{fmt.Errorf("x: %w", context.Canceled), syscall.EINTR},
		{&os.PathError{Op: "write", Path: "/v/abc", Err: syscall.ENOSPC}, syscall.ENOSPC},
		{fmt.Errorf("writing: %w", &os.PathError{Op: "open", Err: syscall.EROFS}), syscall.EROFS},
		{fmt.Errorf("%w: x", diskaccess.ErrRefMismatch), syscall.EIO},
		{fmt.Errorf("%w: x", diskaccess.ErrKeyNotAvailable), syscall.EACCES},
		{&snapshot.TreeError{Err: fmt.Errorf("loading: %w", fs.ErrNotExist)}, syscall.EIO}, // a lost tree blob
		{fmt.Errorf("record: %w", snapshot.ErrCorrupt), syscall.EIO},
		{fmt.Errorf(`"x": %w`, fs.ErrNotExist), syscall.ENOENT}, // a name not in a snapshot's directory
		{errors.New("anything else"), syscall.EIO},
	} {
		if got := toErrno(tc.err); got != tc.want {
			t.Errorf("toErrno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
