package badger

import badgerdb "github.com/dgraph-io/badger/v4"

// RootKeyForTest lets the plaintext scan look for the root key.
func RootKeyForTest(s *Store) []byte {
	rootKey, _ := s.keys()
	return rootKey
}

// DropTreeIndexForTest makes the store look like one made before the
// tree index was kept: no parents, no subdirectory index, no setting.
func DropTreeIndexForTest(s *Store) error {
	return s.update(func(txn *badgerdb.Txn) error {
		for _, prefix := range []byte{prefixParent, prefixSubdir} {
			it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefix}})
			var keys [][]byte
			for it.Rewind(); it.Valid(); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			it.Close()
			for _, key := range keys {
				if err := txn.Delete(key); err != nil {
					return err
				}
			}
		}
		return txn.Delete(stringKey(prefixSetting, "tree-index"))
	})
}
