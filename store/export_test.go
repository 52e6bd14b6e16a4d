package store

// CloseWithoutSyncForTest closes s as a crash leaves it: the metadata
// keeps every write, and nothing more is synced.
func CloseWithoutSyncForTest(s *Store) error { return s.closeWithoutSync() }
