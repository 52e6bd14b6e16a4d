package badger

import (
	"encoding/binary"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
)

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

// ContentsForTest returns every key and value the store holds, for
// comparing what two stores wrote. What differs from store to store for
// the same writes is evened out: an inode's ctime and atime are zeroed, and a stamp
// (a directory's, a blob index mark's: clock readings) reads "stamp".
func ContentsForTest(s *Store) (map[string]string, error) {
	contents := map[string]string{}
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().KeyCopy(nil)
			value, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			switch key[0] {
			case prefixInode:
				n, err := decodeInode(binary.BigEndian.Uint64(key[1:]), value)
				if err != nil {
					return err
				}
				n.Ctime, n.Atime = time.Time{}, time.Time{}
				value = encodeInode(n)
			case prefixDirStamp, prefixIndexMark:
				value = []byte("stamp")
			}
			contents[string(key)] = string(value)
		}
		return nil
	})
	return contents, err
}

// UnmarkExplicitForTest makes the store look like one made before explicit
// stores were kept: no record marked, no setting.
func UnmarkExplicitForTest(s *Store) error {
	return s.update(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixBlob}, PrefetchValues: true})
		var records []*blobRecord
		for it.Rewind(); it.Valid(); it.Next() {
			value, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			record, err := decodeRecord([32]byte(it.Item().Key()[1:]), value)
			if err != nil {
				it.Close()
				return err
			}
			records = append(records, record)
		}
		it.Close()
		for _, record := range records {
			record.Explicit = false
			if err := txn.Set(blobKey(record.Ref), encodeRecord(record)); err != nil {
				return err
			}
		}
		return txn.Delete(stringKey(prefixSetting, "explicit-stores"))
	})
}

// LinksForTest returns what the store keeps of inode ino's names beside
// its entries: the directories its l keys list, with their counts, and
// its parent (p).
func LinksForTest(s *Store, ino uint64) (map[uint64]uint32, uint64, error) {
	dirs := map[uint64]uint32{}
	var parent uint64
	err := s.view(func(txn *badgerdb.Txn) error {
		list, err := linkDirs(txn, ino)
		if err != nil {
			return err
		}
		for _, dir := range list {
			body, err := getCopy(txn, linkDirKey(ino, dir), "link directory")
			if err != nil {
				return err
			}
			dirs[dir] = binary.BigEndian.Uint32(body)
		}
		parent, err = parentOf(txn, ino)
		return err
	})
	return dirs, parent, err
}

// DirStampForTest returns the stamp of directory dir's last change (g).
func DirStampForTest(s *Store, dir uint64) (uint64, error) {
	var stamp uint64
	err := s.view(func(txn *badgerdb.Txn) error {
		body, err := getCopy(txn, inoKey(prefixDirStamp, dir), "stamp")
		if err == nil {
			stamp = binary.BigEndian.Uint64(body)
		}
		return err
	})
	return stamp, err
}

// DropDirLinksForTest makes the store look like one made before
// directories' link counts were kept: no counts, no setting.
func DropDirLinksForTest(s *Store) error {
	return s.update(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{prefixInode}, PrefetchValues: true})
		var dirs []*Inode
		for it.Rewind(); it.Valid(); it.Next() {
			value, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			n, err := decodeInode(binary.BigEndian.Uint64(it.Item().Key()[1:]), value)
			if err == nil && n.Kind == KindDir {
				n.Nlink = 0
				dirs = append(dirs, n)
			}
		}
		it.Close()
		for _, n := range dirs {
			if err := putInode(txn, n); err != nil {
				return err
			}
		}
		return txn.Delete(stringKey(prefixSetting, "dir-links"))
	})
}

// SetUseChunkForTest makes EachBlobUse read n records at a time, until
// the function it returns puts the size back.
func SetUseChunkForTest(n int) (restore func()) {
	old := useChunk
	useChunk = n
	return func() { useChunk = old }
}

// CrashCopy copies the files of an open store's database as they are now
// (replay_internal_test.go).
var CrashCopy = crashCopy
