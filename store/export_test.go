package store

// CloseWithoutSyncForTest closes s as a crash leaves it: the metadata
// keeps every write, and nothing more is synced.
func CloseWithoutSyncForTest(s *Store) error { return s.closeWithoutSync() }

// SetPolicyBatchForTest makes ReplicateByPolicy's batches n blobs, until
// the returned function puts it back.
func SetPolicyBatchForTest(n int) (restore func()) {
	old := policyBatch
	policyBatch = n
	return func() { policyBatch = old }
}
