package badger

import "fmt"

// Fail makes every later read and write of the store fail with err (and
// the group commit too), as when its directory is gone while it is open:
// Badger would go on with what it holds in memory and in its open files,
// and answer from a database that no longer exists. It may be called more
// than once (the first error stays) and from any goroutine. Close still
// closes the database (and may not return: see Close).
func (s *Store) Fail(err error) {
	s.failed.CompareAndSwap(nil, &err)
}

// failure is the error Fail set, wrapped, or nil.
func (s *Store) failure() error {
	if err := s.failed.Load(); err != nil {
		return fmt.Errorf("metadata store %s: %w", s.dir, *err)
	}
	return nil
}
