package blobstore

import (
	"context"

	"golang.org/x/sys/unix"
)

// Space is the room on a volume, in statfs(2)'s units: counts of blocks of
// BlockSize bytes, and of files (inodes).
type Space struct {
	BlockSize   uint64
	Blocks      uint64 // the volume's size
	BlocksFree  uint64 // free, to root
	BlocksAvail uint64 // free to a writer without privilege (ext4 reserves some)
	Files       uint64 // inodes; 0 where the volume does not count them
	FilesFree   uint64
}

// SpaceReporter is a Driver whose volume has a size of its own: a local
// directory shares its filesystem's. A bucket has none (S3 has no size nor
// free space to report), so an S3 driver is no SpaceReporter.
type SpaceReporter interface {
	// Space returns the room on the volume now. It changes nothing and
	// may be called any number of times, from many goroutines at once; a
	// volume that cannot be reached is an error.
	Space(ctx context.Context) (Space, error)
}

// SpaceOf returns the room on the filesystem holding dir, as statfs(2)
// reports it. Block counts are in fragments (f_frsize), which Linux makes
// equal to f_bsize on every common filesystem.
func SpaceOf(dir string) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return Space{}, err
	}
	blockSize := uint64(st.Frsize)
	if blockSize == 0 {
		blockSize = uint64(st.Bsize)
	}
	return Space{
		BlockSize: blockSize, Blocks: st.Blocks, BlocksFree: st.Bfree, BlocksAvail: st.Bavail,
		Files: st.Files, FilesFree: st.Ffree,
	}, nil
}
