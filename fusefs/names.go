package fusefs

import "syscall"

// maxNameLen is the longest name of an entry, in bytes: statfs says so
// (f_namelen, which getconf NAME_MAX reads), and every operation that
// makes or looks up a name holds to it, as ext4 does. (The kernel itself
// stops FUSE names only at 1024 bytes.) A longer name would be made here
// and then fail to be copied out to any local disk.
const maxNameLen = 255

// checkName answers ENAMETOOLONG for a name longer than maxNameLen. Lookup
// checks it, so that create, mkdir, mknod, symlink, link and rename, which
// the kernel begins with a lookup of the new name, fail the same way; each
// of them checks it too.
func checkName(name string) syscall.Errno {
	if len(name) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	return 0
}
