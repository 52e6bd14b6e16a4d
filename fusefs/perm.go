package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/stofuse/stofuse/metastore"
)

// Permissions. The kernel checks every access against the owners and
// modes the mount shows (default_permissions, see Options): the mode bits,
// sticky directories, who may chmod, chown and set times, and the
// setuid/setgid bits that chmod, chown and truncate clear (it sends those
// as a mode in the same SETATTR). Two rules are left to the filesystem,
// and kept here: the group of what is made in a setgid directory, and the
// setuid/setgid bits a write clears (a write to a file open with
// FOPEN_DIRECT_IO, as every writer of files/ is, reaches the daemon
// without the kernel's file_remove_privs).

// inheritGroup applies the setgid-directory rule to n, about to be made in
// directory dir: in a setgid directory, what is made gets the directory's
// group instead of the caller's, and a directory the setgid bit too, so
// that the rule carries down. (The kernel has already cleared the setgid
// bit of a new file whose maker is not in that group.)
func inheritGroup(dir, n *metastore.Inode) {
	if dir.Mode&syscall.S_ISGID == 0 {
		return
	}
	n.GID = dir.GID
	if n.Kind == metastore.KindDir {
		n.Mode |= syscall.S_ISGID
	}
}

// modeAfterWrite returns the mode of a file after a write by uid, and
// whether the write changes it: as on Linux, a write by a process without
// CAP_FSETID (anyone but root, as FUSE tells it) clears the setuid bit,
// and the setgid bit where it means set-group-ID on execution (with the
// group's execute bit; without it, it marks mandatory locking and stays).
func modeAfterWrite(mode, uid uint32) (uint32, bool) {
	if uid == 0 {
		return mode, false
	}
	after := mode &^ syscall.S_ISUID
	if mode&(syscall.S_ISGID|syscall.S_IXGRP) == syscall.S_ISGID|syscall.S_IXGRP {
		after &^= syscall.S_ISGID
	}
	return after, after != mode
}

// clearPrivilegesForWrite clears the setuid and setgid bits that a write
// by the caller clears (modeAfterWrite), as a chmod would, before the
// write: held for the commit of a new file, else stored at once. The
// kernel's cached attributes are dropped, so that fstat shows it.
func (n *fileNode) clearPrivilegesForWrite(ctx context.Context) syscall.Errno {
	uid, _ := caller(ctx)
	n.mu.Lock()
	mode := n.last.Mode
	if n.session != nil && n.held.hasMode {
		mode = n.held.mode
	}
	n.mu.Unlock()
	after, changed := modeAfterWrite(mode, uid)
	if !changed {
		return 0
	}
	in := &fuse.SetAttrIn{}
	in.Valid, in.Mode = fuse.FATTR_MODE, after
	if !n.hold(in) {
		if errno := n.setattr(ctx, in, &fuse.AttrOut{}); errno != 0 {
			return errno
		}
	}
	n.forgetAttrs()
	return 0
}
