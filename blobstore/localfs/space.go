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

// SetSpaceCheck gives the volume a check that each write into it (every
// write call of a blob or a named object being stored) asks first: its
// error fails that write, and nothing is stored. A store whose metadata
// lives on the volume's filesystem sets its metadata store's, which
// keeps room there for itself. nil removes it. It may be called at any
// time; writes under way take it from their next write call.
func (s *Store) SetSpaceCheck(check func() error) {
	if check == nil {
		s.spaceCheck.Store(nil)
		return
	}
	s.spaceCheck.Store(&check)
}

// checkSpace is SetSpaceCheck's check, or nil without one.
func (s *Store) checkSpace() error {
	if check := s.spaceCheck.Load(); check != nil {
		return (*check)()
	}
	return nil
}
