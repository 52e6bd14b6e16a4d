package diskaccess_test

import (
	"bytes"
	"testing"

	"github.com/stofuse/stofuse/diskaccess/diskaccesstest"
)

func TestControllerWithMemoryStore(t *testing.T) {
	diskaccesstest.RunControllerTests(t, func(t *testing.T) diskaccesstest.Env {
		key := bytes.Repeat([]byte{7}, 32)
		return diskaccesstest.Env{
			Store:  diskaccesstest.NewMemoryStore("default", "key-1", key),
			Keys:   diskaccesstest.KeyRing{"key-1": key},
			CollId: "default",
		}
	})
}
