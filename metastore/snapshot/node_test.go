package snapshot

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

func TestNodeRoundTrip(t *testing.T) {
	entries := sampleEntries()
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range []*Node{
		{Level: 0},
		{Level: 0, Entries: entries},
		{Level: 0, Entries: entries[:1]},
		{Level: 1, Children: []Child{{First: "a", Ref: blobstore.RefOf([]byte("1")), Count: 3}, {First: "b", Ref: blobstore.RefOf([]byte("2")), Count: 1 << 40}}},
		{Level: maxLevel, Children: []Child{{First: strings.Repeat("x", MaxName), Ref: blobstore.RefOf(nil), Count: 1}}},
	} {
		b, err := EncodeNode(n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeNode(b)
		if err != nil {
			t.Fatalf("level %d, %d entries: %v", n.Level, len(n.Entries), err)
		}
		if !sameNode(got, n) {
			t.Fatalf("decoded %+v, want %+v", got, n)
		}
		again, _ := EncodeNode(got)
		if string(again) != string(b) {
			t.Fatal("re-encoding a decoded node gives other bytes")
		}
	}
}

func sameNode(a, b *Node) bool {
	return a.Level == b.Level && slices.Equal(a.Children, b.Children) &&
		slices.EqualFunc(a.Entries, b.Entries, func(x, y Entry) bool { return x.Equal(&y) })
}

func TestEncodeRefusesInvalid(t *testing.T) {
	good := sampleEntries()[0]
	for name, change := range map[string]func(*Entry){
		"empty name":       func(e *Entry) { e.Name = "" },
		"dot":              func(e *Entry) { e.Name = "." },
		"dotdot":           func(e *Entry) { e.Name = ".." },
		"slash":            func(e *Entry) { e.Name = "a/b" },
		"nul":              func(e *Entry) { e.Name = "a\x00" },
		"long name":        func(e *Entry) { e.Name = strings.Repeat("n", 256) },
		"zero ino":         func(e *Entry) { e.Ino = 0 },
		"mode type bits":   func(e *Entry) { e.Mode = 0o100644 },
		"negative size":    func(e *Entry) { e.Size = -1 },
		"kind 0":           func(e *Entry) { e.Kind = 0 },
		"kind 9":           func(e *Entry) { e.Kind = 9 },
		"file with target": func(e *Entry) { e.Target = "x" },
		"size, no content": func(e *Entry) { e.Ref = blobstore.Ref{} },
		"dir without tree": func(e *Entry) { e.Kind, e.Ref, e.StoredSize = KindDir, blobstore.Ref{}, 0 },
		"dir stored size":  func(e *Entry) { e.Kind = KindDir },
		"symlink no target": func(e *Entry) {
			e.Kind, e.Ref, e.StoredSize = KindSymlink, blobstore.Ref{}, 0
		},
		"symlink with ref":  func(e *Entry) { e.Kind, e.StoredSize, e.Target = KindSymlink, 0, "t" },
		"fifo with content": func(e *Entry) { e.Kind, e.StoredSize = KindFifo, 0 },
		"socket with size": func(e *Entry) {
			e.Kind, e.Ref, e.StoredSize = KindSocket, blobstore.Ref{}, 0
		},
		"device with target": func(e *Entry) {
			e.Kind, e.Ref, e.StoredSize, e.Size, e.Target = KindCharDev, blobstore.Ref{}, 0, 0, "t"
		},
		"file with rdev": func(e *Entry) { e.Rdev = 1 },
		"one link":       func(e *Entry) { e.Nlink = 1 },
		"xattr no name":  func(e *Entry) { e.Xattrs = []Xattr{{Value: []byte("v")}} },
		"xattr not user": func(e *Entry) { e.Xattrs = []Xattr{{Name: "trusted.a"}} },
		"xattr user.":    func(e *Entry) { e.Xattrs = []Xattr{{Name: "user."}} },
		"many links":     func(e *Entry) { e.Nlink = MaxLinks + 1 },
		"xattr nul":      func(e *Entry) { e.Xattrs = []Xattr{{Name: "user.a\x00"}} },
		"xattr long":     func(e *Entry) { e.Xattrs = []Xattr{{Name: "user." + strings.Repeat("n", MaxXattrName)}} },
		"xattrs order":   func(e *Entry) { e.Xattrs = []Xattr{{Name: "user.b"}, {Name: "user.a"}} },
		"xattr twice":    func(e *Entry) { e.Xattrs = []Xattr{{Name: "user.a"}, {Name: "user.a"}} },
		"xattrs big": func(e *Entry) {
			e.Xattrs = []Xattr{{Name: "user.a", Value: make([]byte, MaxXattrsSize/2)}, {Name: "user.b", Value: make([]byte, MaxXattrsSize/2)}}
		},
		"linked dir": func(e *Entry) { e.Kind, e.StoredSize, e.Nlink = KindDir, 0, 2 },
		"long target": func(e *Entry) {
			e.Kind, e.Ref, e.StoredSize, e.Target = KindSymlink, blobstore.Ref{}, 0, strings.Repeat("t", MaxTarget+1)
		},
	} {
		e := good
		change(&e)
		if _, err := EncodeNode(&Node{Entries: []Entry{e}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: EncodeNode = %v, want ErrInvalid", name, err)
		}
	}
	twice := []Entry{good, good}
	if _, err := EncodeNode(&Node{Entries: twice}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a name twice: %v, want ErrInvalid", err)
	}
}
