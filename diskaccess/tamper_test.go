package diskaccess

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
)

// The tamper tests damage a three-frame blob in every way a faulty disk or
// a forger without the key could, and check that every read fails with a
// *CorruptBlobError and hands out no byte of the damaged frame.

var tamperPlain = randomPlain(42, 2*testFrame+testFrame/2) // frames of F, F, F/2

type tamperCase struct {
	name   string
	stored []byte
	// firstBadFrame is the first frame a reader may not return bytes of:
	// 0 when the damage is found before any frame is read.
	firstBadFrame int
}

func tamperCases(t *testing.T) []tamperCase {
	good := seal(t, tamperPlain, goldenKey, goldenSalt, false)
	frames, flags := splitFrames(t, good)
	indexStart := len(good) - footerSize - 3*indexEntrySize
	var cases []tamperCase
	add := func(name string, firstBad int, edit func(b []byte) []byte) {
		cases = append(cases, tamperCase{name, edit(slices.Clone(good)), firstBad})
	}
	for i := 0; i < headerSize; i++ {
		add(fmt.Sprintf("flip header byte %d", i), 0, func(b []byte) []byte { b[i] ^= 0x01; return b })
	}
	frameStart := headerSize
	for f, frame := range frames {
		for _, at := range []int{0, 1, len(frame) / 2, len(frame) - tagSize - 1, len(frame) - tagSize, len(frame) - 1} {
			pos := frameStart + at
			add(fmt.Sprintf("flip frame %d byte %d", f, at), f, func(b []byte) []byte { b[pos] ^= 0x80; return b })
		}
		frameStart += len(frame)
	}
	for i := indexStart; i < len(good); i++ {
		add(fmt.Sprintf("flip trailer byte %d", i-indexStart), 0, func(b []byte) []byte { b[i] ^= 0x04; return b })
	}
	for _, n := range []int{0, 1, headerSize, headerSize + len(frames[0]), len(good) - footerSize, len(good) - 1} {
		add(fmt.Sprintf("truncate to %d bytes", n), 0, func(b []byte) []byte { return b[:n] })
	}
	for _, extra := range [][]byte{{0}, make([]byte, tagSize), good} {
		add(fmt.Sprintf("append %d bytes", len(extra)), 0, func(b []byte) []byte { return append(b, extra...) })
	}
	header := good[:headerSize]
	plainSize := int64(len(tamperPlain))
	cases = append(cases,
		tamperCase{"swap frames 0 and 1", rebuild(header, [][]byte{frames[1], frames[0], frames[2]}, flags, plainSize), 0},
		tamperCase{"drop the last frame", rebuild(header, frames[:2], flags, 2*testFrame), 1},
		tamperCase{"drop a middle frame", rebuild(header, [][]byte{frames[0], frames[2]}, flags, testFrame+testFrame/2), 1},
		tamperCase{"repeat frame 0", rebuild(header, [][]byte{frames[0], frames[0], frames[2]}, flags, plainSize), 1},
		tamperCase{"mark frame 1 compressed", rebuild(header, frames, []byte{0, flagLZ4, 0}, plainSize), 0},
	)
	// Frames from a blob of the same content (same ref) under another salt,
	// and from a blob of another ref under the same key and salt.
	sameRef := seal(t, tamperPlain, goldenKey, [saltSize]byte(seq(0x99, 32)), false)
	sameRefFrames, _ := splitFrames(t, sameRef)
	otherPlain := randomPlain(43, len(tamperPlain))
	otherRefFrames, _ := splitFrames(t, seal(t, otherPlain, goldenKey, goldenSalt, false))
	cases = append(cases,
		tamperCase{"splice frame 1 of the same ref under another salt",
			rebuild(header, [][]byte{frames[0], sameRefFrames[1], frames[2]}, flags, plainSize), 1},
		tamperCase{"splice frame 1 of another ref",
			rebuild(header, [][]byte{frames[0], otherRefFrames[1], frames[2]}, flags, plainSize), 1},
		tamperCase{"the same ref's header on these frames",
			rebuild(sameRef[:headerSize], frames, flags, plainSize), 0},
	)
	return cases
}

func TestTamperedBlobsFail(t *testing.T) {
	ref := blobstore.RefOf(tamperPlain)
	for _, tc := range tamperCases(t) {
		got, err := openAll(ref, goldenKey, tc.stored)
		checkTampered(t, tc, "Fetch", got, err)
		got, err = readAtAll(ref, goldenKey, tc.stored)
		checkTampered(t, tc, "ReadAt", got, err)
	}
}

// readAtAll reads the whole plaintext with one ReadAt per frame, in
// reverse order, so that the damaged frame is also met first.
func readAtAll(ref blobstore.Ref, key, stored []byte) ([]byte, error) {
	blob, err := openBlobReader(ref, 1, rawOf(stored), key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, blob.Size())
	var firstErr error
	for f := len(blob.layout.frames) - 1; f >= 0; f-- {
		start := int64(f) * testFrame
		end := min(start+testFrame, blob.Size())
		n, err := blob.ReadAt(out[start:end], start)
		if err != nil && n != 0 {
			return nil, fmt.Errorf("ReadAt of frame %d failed after handing out %d bytes: %w", f, n, err)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err != nil {
			clear(out[start:end])
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func checkTampered(t *testing.T, tc tamperCase, how string, got []byte, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: %s succeeded on a tampered blob", tc.name, how)
		return
	}
	var ce *CorruptBlobError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("%s: %s error %v is not a *CorruptBlobError", tc.name, how, err)
		return
	}
	if limit := tc.firstBadFrame * testFrame; len(got) > limit || !bytes.Equal(got, tamperPlain[:len(got)]) {
		t.Errorf("%s: %s handed out %d bytes (limit %d) or wrong bytes before failing", tc.name, how, len(got), limit)
	}
}

func TestWrongKeyFailsLikeCorruption(t *testing.T) {
	ref := blobstore.RefOf(tamperPlain)
	stored := seal(t, tamperPlain, goldenKey, goldenSalt, true)
	got, err := openAll(ref, seq(0x01, 32), stored)
	var ce *CorruptBlobError
	if !errors.As(err, &ce) || ce.Frame != 0 || len(got) != 0 {
		t.Fatalf("a wrong key gave %d bytes and %v; want none and a CorruptBlobError for frame 0", len(got), err)
	}
	// Opening under another ref is the same as a wrong key.
	if got, err := openAll(blobstore.RefOf([]byte("x")), goldenKey, stored); !errors.Is(err, ErrCorrupt) || len(got) != 0 {
		t.Fatalf("opening under another ref gave %d bytes and %v", len(got), err)
	}
}

// TestFrameErrorSaysWhy: bit rot (the frame checksum fails too) and a wrong
// key (the stored bytes are intact) are told apart in the message.
func TestFrameErrorSaysWhy(t *testing.T) {
	ref := blobstore.RefOf(tamperPlain)
	stored := seal(t, tamperPlain, goldenKey, goldenSalt, false)
	_, wrongKey := openAll(ref, seq(0x01, 32), stored)
	stored[headerSize+5] ^= 1
	_, rotten := openAll(ref, goldenKey, stored)
	if !bytes.Contains([]byte(rotten.Error()), []byte("damaged on disk")) {
		t.Errorf("bit rot reads %q; want it to say the bytes are damaged on disk", rotten)
	}
	if !bytes.Contains([]byte(wrongKey.Error()), []byte("another key")) {
		t.Errorf("a wrong key reads %q; want it to mention another key", wrongKey)
	}
}
