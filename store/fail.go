package store

// Fail makes every later use of the store's metadata fail with err: what
// its caller does when the store's directory is gone while it is open (a
// removed directory, a disk unplugged or lazily unmounted), so that
// nothing is answered from, or written into, a database that no longer
// exists. Close then makes no last Sync. It may be called more than once,
// from any goroutine; the first error stays.
func (s *Store) Fail(err error) {
	s.failed.CompareAndSwap(nil, &err)
	s.meta.Fail(err)
}

// Failed is the error Fail was given, or nil.
func (s *Store) Failed() error {
	if err := s.failed.Load(); err != nil {
		return *err
	}
	return nil
}
