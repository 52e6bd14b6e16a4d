package localfs

import (
	"context"

	"github.com/stofuse/stofuse/blobstore"
)

var _ blobstore.SpaceReporter = (*Store)(nil)

// Space implements blobstore.SpaceReporter: the volume directory's
// filesystem, as statfs(2) reports it.
func (s *Store) Space(ctx context.Context) (blobstore.Space, error) {
	if err := ctx.Err(); err != nil {
		return blobstore.Space{}, err
	}
	return blobstore.SpaceOf(s.dir)
}
