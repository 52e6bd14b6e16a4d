package snapshot_test

import (
	"testing"

	"github.com/stofuse/stofuse/metastore"
	"github.com/stofuse/stofuse/metastore/badger"
	"github.com/stofuse/stofuse/metastore/snapshot"
)

// The codec keeps its own Kind so as to depend on blobstore alone; the
// values must stay those of the tree's, so that a conversion is Kind(k).
func TestKindsMatchMetastore(t *testing.T) {
	for _, pair := range [][2]byte{
		{byte(snapshot.KindFile), byte(metastore.KindFile)},
		{byte(snapshot.KindDir), byte(metastore.KindDir)},
		{byte(snapshot.KindSymlink), byte(metastore.KindSymlink)},
		{byte(snapshot.KindFifo), byte(metastore.KindFifo)},
		{byte(snapshot.KindSocket), byte(metastore.KindSocket)},
		{byte(snapshot.KindCharDev), byte(metastore.KindCharDev)},
		{byte(snapshot.KindBlockDev), byte(metastore.KindBlockDev)},
	} {
		if pair[0] != pair[1] {
			t.Fatalf("snapshot kind %d is metastore kind %d", pair[0], pair[1])
		}
	}
}

// The codec's limits are the tree's: a snapshot holds what the tree can,
// and a recover restores nothing the tree would refuse.
func TestLimitsMatchTheTree(t *testing.T) {
	for _, pair := range [][2]int{
		{snapshot.MaxLinks, badger.MaxLinks},
		{snapshot.MaxXattrName, metastore.MaxXattrName},
		{snapshot.MaxXattrsSize, metastore.MaxXattrsSize},
	} {
		if pair[0] != pair[1] {
			t.Errorf("snapshot limit %d, tree limit %d", pair[0], pair[1])
		}
	}
}
