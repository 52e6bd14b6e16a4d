package badger

// RootKeyForTest lets the plaintext scan look for the root key.
func RootKeyForTest(s *Store) []byte {
	rootKey, _ := s.keys()
	return rootKey
}
