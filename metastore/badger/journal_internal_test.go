package badger

import (
	"reflect"
	"testing"
	"time"

	"github.com/stofuse/stofuse/blobstore"
)

func TestContentEntryCodec(t *testing.T) {
	ref := blobstore.RefOf([]byte("hello"))
	had := Content{Had: true, Ref: ref, Size: 5, StoredSize: 94, Mtime: time.Unix(1796117405, 123456789)}
	for _, p := range []PendingContent{
		{Ino: 7, Generation: 1},
		{Ino: 7, Generation: 1 << 40, Durable: had},
		{Ino: 7, Generation: 3, Newer: &had},
		{Ino: 7, Generation: 3, Durable: had, Newer: &Content{Had: true, Ref: ref, Size: 1, Mtime: time.Unix(7, 0)}},
	} {
		b := encodeContentEntry(p)
		if want := 8 + contentSize; p.Newer != nil && len(b) != want+contentSize || p.Newer == nil && len(b) != want {
			t.Errorf("%+v: %d bytes", p, len(b))
		}
		got, err := decodeContentEntry(7, b)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("decode(encode(%+v)) = %+v, %v", p, got, err)
		}
	}
	good := encodeContentEntry(PendingContent{Generation: 1, Durable: had})
	for name, b := range map[string][]byte{
		"empty":       nil,
		"short":       good[:len(good)-1],
		"long":        append(append([]byte(nil), good...), 0),
		"flags":       append(append([]byte(nil), good[:8]...), append([]byte{2}, good[9:]...)...),
		"newer flags": append(append([]byte(nil), good...), append([]byte{0x81}, good[9:]...)...),
	} {
		if _, err := decodeContentEntry(7, b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
