package badger_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/stofuse/stofuse/metastore"
	"github.com/stofuse/stofuse/metastore/badger"
)

// TestXattrs: user.* attributes are set, replaced and removed as
// setxattr(2) says, shared by hard links, bounded, kept across a reopen,
// and go with the inode.
func TestXattrs(t *testing.T) {
	ctx := context.Background()
	store, dir := openDir(t)
	root := folder(t, store, "default")
	file := create(t, store, root, "f", badger.KindFile)
	if file.HasXattrs {
		t.Fatal("a new file has extended attributes")
	}
	n, err := store.SetXattr(ctx, file.Ino, "user.b", []byte("two"), 0)
	if err != nil || !n.HasXattrs || !n.Ctime.After(file.Ctime) {
		t.Fatalf("SetXattr: %+v, %v", n, err)
	}
	if _, err := store.SetXattr(ctx, file.Ino, "user.a", nil, metastore.XattrCreate); err != nil {
		t.Fatal(err)
	}
	set := func(name string, value []byte, flags uint32) error {
		_, err := store.SetXattr(ctx, file.Ino, name, value, flags)
		return err
	}
	for _, c := range []struct {
		what string
		err  error
		want error
	}{
		{"create of an existing one", set("user.a", nil, metastore.XattrCreate), fs.ErrExist},
		{"replace of a missing one", set("user.c", nil, metastore.XattrReplace), syscall.ENODATA},
		{"a security.* name", set("security.selinux", nil, 0), syscall.ENOTSUP},
		{"more than MaxXattrsSize in all", set("user.big", make([]byte, metastore.MaxXattrsSize), 0), syscall.ENOSPC},
		{"a name of 256 bytes", set("user."+strings.Repeat("x", 251), nil, 0), syscall.ERANGE},
		{"remove of a missing one", func() error { _, err := store.RemoveXattr(ctx, file.Ino, "user.c"); return err }(), syscall.ENODATA},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
	if _, err := store.SetXattr(ctx, file.Ino, "user.b", []byte("replaced"), metastore.XattrReplace); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Link(ctx, file.Ino, root, "g"); err != nil {
		t.Fatal(err)
	}
	store = reopen(t, store, dir)
	linked, err := store.Lookup(ctx, root, "g")
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.Xattrs(ctx, linked.Ino)
	if err != nil || len(got) != 2 || got[0].Name != "user.a" || len(got[0].Value) != 0 ||
		got[1].Name != "user.b" || string(got[1].Value) != "replaced" {
		t.Fatalf("Xattrs through the other name after a reopen: %+v, %v", got, err)
	}

	// Removing the last clears the flag; an inode that goes takes its
	// attributes with it.
	for _, name := range []string{"user.a", "user.b"} {
		if n, err = store.RemoveXattr(ctx, file.Ino, name); err != nil {
			t.Fatal(err)
		}
	}
	if n.HasXattrs {
		t.Error("no attributes left, but the record says there are")
	}
	if _, err := store.SetXattr(ctx, file.Ino, "user.kept", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"f", "g"} {
		if _, err := store.Remove(ctx, root, name, false); err != nil {
			t.Fatal(err)
		}
	}
	contents, err := badger.ContentsForTest(store)
	if err != nil {
		t.Fatal(err)
	}
	for key := range contents {
		if strings.HasPrefix(key, "a") {
			t.Errorf("a removed inode's attribute is left: %q", key)
		}
	}
}
