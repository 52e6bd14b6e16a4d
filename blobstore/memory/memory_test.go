package memory_test

import (
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/blobstore/memory"
	"github.com/stofuse/stofuse/blobstore/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) blobstore.Driver { return memory.New(1) })
}
