package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

// objectTests are the conformance tests of named objects.
var objectTests = []struct {
	name string
	fn   func(t *testing.T, d blobstore.Driver)
}{
	{"ObjectRoundTrip", testObjectRoundTrip},
	{"ObjectReplace", testObjectReplace},
	{"ObjectNotFound", testObjectNotFound},
	{"ObjectFailedPutKeepsOld", testObjectFailedPutKeepsOld},
	{"ObjectListOrderAndPrefix", testObjectListOrderAndPrefix},
	{"ObjectListStopsOnError", testObjectListStopsOnError},
	{"ObjectsApartFromBlobs", testObjectsApartFromBlobs},
	{"ObjectBadNames", testObjectBadNames},
}

func putObject(t *testing.T, d blobstore.Driver, name string, content []byte) {
	t.Helper()
	if err := d.PutObject(context.Background(), name, bytes.NewReader(content)); err != nil {
		t.Fatalf("PutObject(%q): %v", name, err)
	}
}

func getObject(t *testing.T, d blobstore.Driver, name string) []byte {
	t.Helper()
	rc, err := d.GetObject(context.Background(), name)
	if err != nil {
		t.Fatalf("GetObject(%q): %v", name, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading object %q: %v", name, err)
	}
	return got
}

func listObjects(t *testing.T, d blobstore.Driver, prefix string) []blobstore.ObjectInfo {
	t.Helper()
	var infos []blobstore.ObjectInfo
	err := d.ListObjects(context.Background(), prefix, func(info blobstore.ObjectInfo) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		t.Fatalf("ListObjects(%q): %v", prefix, err)
	}
	return infos
}

func objectNames(infos []blobstore.ObjectInfo) []string {
	names := []string{}
	for _, info := range infos {
		names = append(names, info.Name)
	}
	return names
}

func testObjectRoundTrip(t *testing.T, d blobstore.Driver) {
	objects := map[string][]byte{
		"volume":                   []byte(`{"format":"stofuse volume"}`),
		"keys/default":             randomBytes(20, 3000),
		"snapshots/default/0-9._x": {},
		"large":                    randomBytes(21, 6<<20+3),
	}
	for name, content := range objects {
		putObject(t, d, name, content)
	}
	for name, content := range objects {
		if got := getObject(t, d, name); !bytes.Equal(got, content) {
			t.Fatalf("GetObject(%q) = %d bytes, want the %d stored", name, len(got), len(content))
		}
	}
	for _, info := range listObjects(t, d, "") {
		if want, ok := objects[info.Name]; !ok || info.Size != int64(len(want)) {
			t.Fatalf("ListObjects gives %+v; stored %d bytes under that name (stored: %v)", info, len(want), ok)
		}
	}
	if n := len(listObjects(t, d, "")); n != len(objects) {
		t.Fatalf("ListObjects shows %d objects, want %d", n, len(objects))
	}
}

func testObjectReplace(t *testing.T, d blobstore.Driver) {
	before := time.Now()
	putObject(t, d, "keys/c", []byte("old envelope"))
	first := listObjects(t, d, "")
	if len(first) != 1 {
		t.Fatalf("ListObjects = %+v, want one object", first)
	}
	assertModTimeNear(t, "ListObjects after PutObject", first[0].ModTime, before, time.Now())
	putObject(t, d, "keys/c", []byte("new envelope!"))
	if got := getObject(t, d, "keys/c"); string(got) != "new envelope!" {
		t.Fatalf("after a replace GetObject = %q", got)
	}
	second := listObjects(t, d, "")
	if len(second) != 1 || second[0].Size != int64(len("new envelope!")) {
		t.Fatalf("after a replace ListObjects = %+v, want the one new object", second)
	}
	if second[0].ModTime.Before(first[0].ModTime) {
		t.Fatalf("a replace moved the modification time back: %v, then %v", first[0].ModTime, second[0].ModTime)
	}
	putObject(t, d, "keys/c", []byte("new envelope!")) // idempotent
	if got := listObjects(t, d, ""); len(got) != 1 {
		t.Fatalf("after storing the same object twice ListObjects = %+v", got)
	}
}

func testObjectNotFound(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	_, err := d.GetObject(ctx, "missing")
	assertNotExist(t, "GetObject of a missing object", err)
	assertNotExist(t, "RemoveObject of a missing object", d.RemoveObject(ctx, "missing"))
	if got := listObjects(t, d, ""); len(got) != 0 {
		t.Fatalf("an empty volume lists objects %v", objectNames(got))
	}
	putObject(t, d, "gone", []byte("x"))
	putObject(t, d, "kept", []byte("y"))
	if err := d.RemoveObject(ctx, "gone"); err != nil {
		t.Fatalf("RemoveObject: %v", err)
	}
	assertNotExist(t, "second RemoveObject", d.RemoveObject(ctx, "gone"))
	_, err = d.GetObject(ctx, "gone")
	assertNotExist(t, "GetObject after RemoveObject", err)
	if got := objectNames(listObjects(t, d, "")); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("after RemoveObject ListObjects = %v, want [kept]", got)
	}
}

func testObjectFailedPutKeepsOld(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	putObject(t, d, "old", []byte("old bytes"))
	for _, name := range []string{"old", "fresh"} {
		err := d.PutObject(ctx, name, newFailingReader(randomBytes(22, 200_000)))
		if !errors.Is(err, errInjected) {
			t.Fatalf("PutObject(%q) with a failing reader: err = %v, want the reader's error", name, err)
		}
	}
	if got := getObject(t, d, "old"); string(got) != "old bytes" {
		t.Fatalf("after a failed replace GetObject = %d bytes, want the old ones", len(got))
	}
	_, err := d.GetObject(ctx, "fresh")
	assertNotExist(t, "GetObject after a failed PutObject", err)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.PutObject(cancelled, "fresh", strings.NewReader("x")); err == nil {
		t.Fatal("PutObject with a cancelled context succeeded")
	}
	if got := objectNames(listObjects(t, d, "")); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("after failed puts ListObjects = %v, want [old]", got)
	}
}

// orderedNames sort differently as names, as flat spellings ('/' as '+')
// and as a directory walk would: only name order is right.
var orderedNames = []string{"a", "a-b", "a.b", "a/b", "a/b/c", "a/b0", "a0", "a_b", "b"}

func testObjectListOrderAndPrefix(t *testing.T, d blobstore.Driver) {
	for i := range orderedNames {
		j := (i * 5) % len(orderedNames) // store out of order
		putObject(t, d, orderedNames[j], []byte(orderedNames[j]))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", orderedNames},
		{"a/", []string{"a/b", "a/b/c", "a/b0"}},
		{"a/b", []string{"a/b", "a/b/c", "a/b0"}},
		{"a/b/", []string{"a/b/c"}},
		{"a", orderedNames[:len(orderedNames)-1]},
		{"b", []string{"b"}},
		{"c", []string{}},
	} {
		infos := listObjects(t, d, tc.prefix)
		if got := objectNames(infos); !slices.Equal(got, tc.want) {
			t.Fatalf("ListObjects(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
		for _, info := range infos {
			if info.Size != int64(len(info.Name)) {
				t.Fatalf("ListObjects gives %q size %d, want %d", info.Name, info.Size, len(info.Name))
			}
		}
	}
}

func testObjectListStopsOnError(t *testing.T, d blobstore.Driver) {
	for _, name := range []string{"x1", "x2", "x3"} {
		putObject(t, d, name, nil)
	}
	stop := errors.New("stop")
	calls := 0
	err := d.ListObjects(context.Background(), "", func(blobstore.ObjectInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("ListObjects with fn failing: err = %v after %d calls, want fn's error after 1", err, calls)
	}
}

// testObjectsApartFromBlobs: a named object, even one named like a ref, is
// never a blob, and a blob never a named object.
func testObjectsApartFromBlobs(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	var zero blobstore.Ref
	refName := testRef(1).String()
	store(t, d, zero, []byte("blob 0"))
	store(t, d, testRef(1), []byte("blob 1"))
	putObject(t, d, "volume", []byte("object"))
	putObject(t, d, refName, []byte("object named like a ref"))
	putObject(t, d, refName[:3]+"/"+refName, []byte("object named like a blob's path"))
	if refs, _ := listAll(t, d); len(refs) != 2 {
		t.Fatalf("List shows %d blobs, want the 2 stored: named objects must not be listed", len(refs))
	}
	if got := listObjects(t, d, ""); len(got) != 3 {
		t.Fatalf("ListObjects = %v, want the 3 named objects and no blob", objectNames(got))
	}
	if err := d.RemoveObject(ctx, refName); err != nil {
		t.Fatalf("RemoveObject: %v", err)
	}
	assertContent(t, d, testRef(1), []byte("blob 1"))
	if err := d.Remove(ctx, zero); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := getObject(t, d, "volume"); string(got) != "object" {
		t.Fatalf("GetObject after removing a blob = %q", got)
	}
}

var badObjectNames = []string{
	"", "/", "a/", "/a", "a//b", ".", "..", "a/../b", "a/./b", ".hidden", "a/.tmp-x",
	"A", "keys/Default", "a b", "a+b", "a\\b", "a:b", "é", "a\x00", "-a", "_a", "a/-b",
	strings.Repeat("a", blobstore.MaxObjectNameLen+1),
}

var goodObjectNames = []string{"0", "a.b-c_d/9", "x-/y", strings.Repeat("a", blobstore.MaxObjectNameLen)}

func testObjectBadNames(t *testing.T, d blobstore.Driver) {
	ctx := context.Background()
	for _, name := range badObjectNames {
		err := d.PutObject(ctx, name, strings.NewReader("x"))
		if !errors.Is(err, blobstore.ErrInvalidObjectName) {
			t.Fatalf("PutObject(%q) = %v, want ErrInvalidObjectName", name, err)
		}
		if _, err := d.GetObject(ctx, name); !errors.Is(err, blobstore.ErrInvalidObjectName) {
			t.Fatalf("GetObject(%q) = %v, want ErrInvalidObjectName", name, err)
		}
		if err := d.RemoveObject(ctx, name); !errors.Is(err, blobstore.ErrInvalidObjectName) {
			t.Fatalf("RemoveObject(%q) = %v, want ErrInvalidObjectName", name, err)
		}
	}
	if got := listObjects(t, d, ""); len(got) != 0 {
		t.Fatalf("refused names left objects %v", objectNames(got))
	}
	for _, name := range goodObjectNames {
		putObject(t, d, name, []byte(name))
		if got := getObject(t, d, name); string(got) != name {
			t.Fatalf("GetObject(%q) = %q", name, got)
		}
	}
}
