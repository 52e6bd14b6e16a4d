package localfs

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/stofuse/stofuse/blobstore"
)

var _ blobstore.SpaceReporter = (*Store)(nil)

// Space implements blobstore.SpaceReporter: the volume directory's
// filesystem, as statfs(2) reports it.
func (s *Store) Space(ctx context.Context) (blobstore.Space, error) {
	if err := ctx.Err(); err != nil {
		return blobstore.Space{}, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return blobstore.Space{}, err
	}
	// Block counts are in fragments (f_frsize), which Linux makes equal
	// to f_bsize on every common filesystem.
	blockSize := uint64(st.Frsize)
	if blockSize == 0 {
		blockSize = uint64(st.Bsize)
	}
	return blobstore.Space{
		BlockSize: blockSize, Blocks: st.Blocks, BlocksFree: st.Bfree, BlocksAvail: st.Bavail,
		Files: st.Files, FilesFree: st.Ffree,
	}, nil
}
