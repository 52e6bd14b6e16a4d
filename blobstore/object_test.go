package blobstore_test

import (
	"errors"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

func TestFlatObjectName(t *testing.T) {
	for _, tc := range []struct {
		name, flat string
	}{
		{"volume", "volume"},
		{"keys/default", "keys+default"},
		{"snapshots/c/2024-01-02t03.04.05z", "snapshots+c+2024-01-02t03.04.05z"},
	} {
		if got := blobstore.FlatObjectName(tc.name); got != tc.flat {
			t.Errorf("FlatObjectName(%q) = %q, want %q", tc.name, got, tc.flat)
		}
		if got, ok := blobstore.ObjectNameOfFlat(tc.flat); !ok || got != tc.name {
			t.Errorf("ObjectNameOfFlat(%q) = %q, %v; want %q", tc.flat, got, ok, tc.name)
		}
	}
	for _, flat := range []string{".tmp-123", ".new-1", "+a", "a+", "a++b", "a/b", "A", ""} {
		if name, ok := blobstore.ObjectNameOfFlat(flat); ok {
			t.Errorf("ObjectNameOfFlat(%q) = %q, true; want not a name", flat, name)
		}
	}
}

func TestCheckObjectNameSaysWhy(t *testing.T) {
	err := blobstore.CheckObjectName("keys/Default")
	if !errors.Is(err, blobstore.ErrInvalidObjectName) ||
		err.Error() != `invalid object name "keys/Default": segment "Default" starts with 'D', want a lowercase letter or a digit` {
		t.Fatalf("CheckObjectName = %v", err)
	}
}
