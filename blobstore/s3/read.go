package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"sync/atomic"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore"
)

// getRange sends one GET of key, from offset to the end or of length bytes
// (length < 0: to the end), conditional on etag when it is not empty. It
// retries transient failures of the request, not of reading the body.
func (s *Store) getRange(ctx context.Context, key, etag string, offset, length int64) (io.ReadCloser, minio.ObjectInfo, error) {
	var options minio.GetObjectOptions
	if etag != "" {
		if err := options.SetMatchETag(etag); err != nil {
			return nil, minio.ObjectInfo{}, err
		}
	}
	switch {
	case length > 0:
		options.SetRange(offset, offset+length-1)
	case offset > 0:
		options.SetRange(offset, 0)
	}
	var body io.ReadCloser
	var info minio.ObjectInfo
	err := s.retry(ctx, "get", key, func(ctx context.Context) error {
		var header http.Header
		var err error
		body, info, header, err = s.core.GetObject(ctx, s.bucket, key, options)
		if err == nil && options.Header().Get("Range") != "" {
			if err = checkContentRange(header.Get("Content-Range"), offset); err != nil {
				body.Close()
			}
		}
		return err
	})
	if isPreconditionFailed(err) {
		err = fmt.Errorf("%w: %w", ErrObjectChanged, err)
	}
	return body, info, err
}

// checkContentRange makes sure a ranged answer starts where it was asked
// to: a server or proxy that ignored the Range header would otherwise hand
// out the bytes from the object's start as the bytes at offset.
func checkContentRange(contentRange string, offset int64) error {
	var start, end, total int64
	if _, err := fmt.Sscanf(contentRange, "bytes %d-%d/%d", &start, &end, &total); err != nil || start != offset {
		return fmt.Errorf("s3: asked for bytes from %d, got an answer with Content-Range %q", offset, contentRange)
	}
	return nil
}

// RawFetch implements blobstore.Driver. The object streams from one GET;
// if the connection breaks, the reader resumes with a ranged GET of the
// rest, conditional on the ETag of the first answer, so it never splices
// two versions of an object: a replaced object is ErrObjectChanged.
func (s *Store) RawFetch(ctx context.Context, ref blobstore.Ref) (io.ReadCloser, error) {
	return s.fetchKey(ctx, s.key(ref))
}

// fetchKey streams the object under key, as RawFetch describes.
func (s *Store) fetchKey(ctx context.Context, key string) (io.ReadCloser, error) {
	body, info, err := s.getRange(ctx, key, "", 0, -1)
	if err != nil {
		return nil, err
	}
	return &fetchReader{store: s, ctx: ctx, key: key, etag: info.ETag, size: info.Size, body: body}, nil
}

// fetchReader is the reader RawFetch returns. It is not safe for
// concurrent use, like any io.Reader.
type fetchReader struct {
	store  *Store
	ctx    context.Context
	key    string
	etag   string
	size   int64
	offset int64         // bytes returned so far
	body   io.ReadCloser // nil after a broken connection, until resumed
	// resumes counts reopenings in a row without progress.
	resumes int
	closed  bool
}

func (f *fetchReader) Read(p []byte) (int, error) {
	if f.closed {
		return 0, fmt.Errorf("s3: read of %s after Close", f.key)
	}
	for {
		if f.body == nil {
			if err := f.resume(); err != nil {
				return 0, err
			}
		}
		n, err := f.body.Read(p)
		f.offset += int64(n)
		if n > 0 {
			f.resumes = 0
		}
		switch {
		case err == io.EOF && f.offset != f.size:
			err = io.ErrUnexpectedEOF // the server closed early
		case err == nil || err == io.EOF:
			return n, err
		}
		if f.offset == f.size {
			return n, io.EOF // every byte arrived; only the goodbye failed
		}
		if !isTransient(err) || f.ctx.Err() != nil {
			return n, f.store.fail("read", f.key, err, 1)
		}
		f.body.Close()
		f.body = nil
		if n > 0 {
			return n, nil
		}
	}
}

// resume reopens the object where the last read stopped.
func (f *fetchReader) resume() error {
	f.resumes++
	if f.resumes > f.store.policy.MaxAttempts || f.etag == "" {
		return f.store.fail("read", f.key, io.ErrUnexpectedEOF, f.store.policy.MaxAttempts)
	}
	if !sleep(f.ctx, f.store.policy.delay(f.resumes)) {
		return f.store.fail("read", f.key, f.ctx.Err(), 1)
	}
	body, _, err := f.store.getRange(f.ctx, f.key, f.etag, f.offset, -1)
	if err != nil {
		return err
	}
	f.body = body
	return nil
}

func (f *fetchReader) Close() error {
	f.closed = true
	if f.body == nil {
		return nil
	}
	err := f.body.Close()
	f.body = nil
	return err
}

// RawOpen implements blobstore.RandomAccessDriver: one HEAD at open, then a
// ranged GET per ReadAt of exactly the bytes asked for, conditional on the
// ETag seen at open.
func (s *Store) RawOpen(ctx context.Context, ref blobstore.Ref) (blobstore.RawReaderAt, error) {
	key := s.key(ref)
	info, err := s.statKey(ctx, key)
	if err != nil {
		return nil, err
	}
	if info.ETag == "" {
		return nil, fmt.Errorf("%s: %s has no ETag to pin a version by", s, key)
	}
	reader := &rangeReader{store: s, ref: ref, key: key, etag: info.ETag, size: info.Size}
	reader.pin = s.readers.open(ref, info.ETag)
	return reader, nil
}

// rangeReader is the RawReaderAt of RawOpen. ReadAt may be called from many
// goroutines: every field is set at open and only read after, and pin is
// guarded by the store's openReaders.
type rangeReader struct {
	store *Store
	ref   blobstore.Ref
	key   string
	etag  string
	size  int64
	pin   *pin
	// closed makes a second Close a no-op rather than a second release.
	closed atomic.Bool
}

func (r *rangeReader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt. ReadAt has no context: a call is bounded by
// the retry policy and the transport's timeouts.
func (r *rangeReader) ReadAt(p []byte, offset int64) (int, error) {
	if offset < 0 {
		return 0, fmt.Errorf("s3: ReadAt at negative offset %d", offset)
	}
	if offset >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-offset)
	n, err := r.readRange(context.Background(), p[:want], offset)
	if err == nil && want < int64(len(p)) {
		err = io.EOF
	}
	return n, err
}

// readRange fills p from offset, from the object's key, or from the copy
// kept for this process's readers once the key no longer holds the pinned
// version.
func (r *rangeReader) readRange(ctx context.Context, p []byte, offset int64) (int, error) {
	n, err := r.readFrom(ctx, r.key, r.etag, p, offset)
	if err == nil || !errors.Is(err, ErrObjectChanged) && !errors.Is(err, fs.ErrNotExist) {
		return n, err
	}
	holdKey, holdETag := r.store.readers.hold(r.pin)
	if holdKey == "" {
		return 0, fmt.Errorf("%w: %s was replaced or removed by another process: %w", ErrObjectChanged, r.key, err)
	}
	return r.readFrom(ctx, holdKey, holdETag, p, offset)
}

// readFrom fills p with one ranged GET; a body that breaks off is
// requested again for the bytes still missing.
func (r *rangeReader) readFrom(ctx context.Context, key, etag string, p []byte, offset int64) (int, error) {
	done := 0
	for breaks := 1; done < len(p); breaks++ {
		body, _, err := r.store.getRange(ctx, key, etag, offset+int64(done), int64(len(p)-done))
		if err != nil {
			return done, err
		}
		n, err := io.ReadFull(body, p[done:])
		body.Close()
		done += n
		if err == nil {
			break
		}
		if !isTransient(err) || breaks >= r.store.policy.MaxAttempts {
			return done, r.store.fail("read", key, err, breaks)
		}
	}
	return done, nil
}

// Close implements io.Closer. The last reader of a version that was copied
// aside deletes the copy.
func (r *rangeReader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if holdKey := r.store.readers.close(r.ref, r.etag, r.pin); holdKey != "" {
		return r.store.removeHold(holdKey)
	}
	return nil
}
