package diskaccesstest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"

	"github.com/stofuse/stofuse/blobstore"
	"github.com/stofuse/stofuse/diskaccess"
)

// commitWith writes content to volume and commits it with record.
func (h *harness) commitWith(t *testing.T, volume int, content []byte, record diskaccess.RecordFunc) (*diskaccess.BlobMeta, error) {
	t.Helper()
	w, err := h.c.NewBlobWriter(h.ctx, volume, h.CollId, blobstore.RefOf(content), diskaccess.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	return w.CommitWith(h.ctx, record)
}

// recordCall is what CommitWith gave a RecordFunc.
type recordCall struct {
	created bool
	volumes []int
}

// recordingFunc records like Commit does (WriteBlobCreated when created)
// and notes each call; fail, if not nil, is returned instead, recording
// nothing.
func (h *harness) recordingFunc(calls *[]recordCall, fail error) diskaccess.RecordFunc {
	return func(ctx context.Context, meta *diskaccess.BlobMeta, created bool) error {
		*calls = append(*calls, recordCall{created, slices.Clone(meta.Volumes)})
		if fail != nil {
			return fail
		}
		if created {
			return h.Store.WriteBlobCreated(ctx, meta, 1)
		}
		return nil
	}
}

// testCommitWith: the RecordFunc records a new blob (created), only does
// its part for a known one, and a failure records nothing.
func testCommitWith(t *testing.T, h *harness) {
	content := TextContent(21, 2*frameSize+3)
	ref := blobstore.RefOf(content)
	var calls []recordCall
	meta, err := h.commitWith(t, 1, content, h.recordingFunc(&calls, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := []recordCall{{true, []int{1}}}; !slices.EqualFunc(calls, want, equalCall) {
		t.Fatalf("record calls of a new blob: %+v, want %+v", calls, want)
	}
	if got := h.meta(t, ref); got.SizeOnDisk != meta.SizeOnDisk || !slices.Equal(got.Volumes, []int{1}) {
		t.Fatalf("recorded %+v, CommitWith returned %+v", got, meta)
	}
	if got, err := h.fetch(t, 1, ref); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Fetch after CommitWith: %v", err)
	}

	calls = nil
	if _, err := h.commitWith(t, 1, content, h.recordingFunc(&calls, nil)); err != nil {
		t.Fatal(err)
	}
	if want := []recordCall{{false, []int{1}}}; !slices.EqualFunc(calls, want, equalCall) {
		t.Fatalf("record calls of a known blob: %+v, want %+v", calls, want)
	}
}

func testCommitWithFailure(t *testing.T, h *harness) {
	content := RandomContent(22, frameSize+9)
	ref := blobstore.RefOf(content)
	errRecord := errors.New("record failed")
	var calls []recordCall
	if _, err := h.commitWith(t, 1, content, h.recordingFunc(&calls, errRecord)); !errors.Is(err, errRecord) {
		t.Fatalf("CommitWith with a failing record: %v, want its error", err)
	}
	if _, err := h.Store.QueryBlobMetadata(h.ctx, ref, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a failed record, QueryBlobMetadata: %v, want fs.ErrNotExist", err)
	}
	// The orphan left on the volume does not stop the next write.
	calls = nil
	if _, err := h.commitWith(t, 1, content, h.recordingFunc(&calls, nil)); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || !calls[0].created {
		t.Fatalf("record calls after a failed one: %+v, want one, created", calls)
	}
	if got, err := h.fetch(t, 1, ref); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Fetch: %v", err)
	}
}

// testCommitWithCopy: a known blob written to another volume is copied
// and recorded there by CommitWith; record only does its part.
func testCommitWithCopy(t *testing.T, h *harness) {
	h.addVolume(t, 2, true)
	content := TextContent(23, frameSize)
	h.write(t, 1, content)
	var calls []recordCall
	if _, err := h.commitWith(t, 2, content, h.recordingFunc(&calls, nil)); err != nil {
		t.Fatal(err)
	}
	if want := []recordCall{{false, []int{1, 2}}}; !slices.EqualFunc(calls, want, equalCall) {
		t.Fatalf("record calls of a copy: %+v, want %+v", calls, want)
	}
	if meta := h.meta(t, blobstore.RefOf(content)); !slices.Equal(meta.Volumes, []int{1, 2}) {
		t.Fatalf("Volumes = %v, want [1 2]", meta.Volumes)
	}
}

func equalCall(a, b recordCall) bool {
	return a.created == b.created && slices.Equal(a.volumes, b.volumes)
}
