package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/stofuse/stofuse/blobstore"
)

const (
	// maxParts is S3's limit of parts in one multipart upload, so the
	// largest blob is maxParts * PartSize (156 GiB at the default).
	maxParts = 10_000
	// firstBufferSize is where a part buffer starts: small blobs do not get
	// a whole PartSize of memory.
	firstBufferSize = 64 << 10
	// cleanupTimeout bounds an abort sent after the caller's context ended.
	cleanupTimeout = 30 * time.Second
)

// putOptions for every upload. The client would otherwise sign plain-HTTP
// uploads chunk by chunk (hashing each chunk again); the payload hash is
// computed once per part instead, and signed.
var putOptions = minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true}

// RawStore implements blobstore.Driver. See the package comment for how it
// streams, and why it is atomic. A reader error, even one that comes with
// the last bytes at EOF (a verifying reader), is returned and nothing is
// stored: the multipart upload is completed only after a clean io.EOF.
//
// When the retries of one request are used up RawStore fails; the bytes
// read so far are not kept, and the caller must store again with a new
// reader. An abandoned multipart upload whose abort also failed (the
// server was down) is invisible to readers and removed by Sweep.
func (s *Store) RawStore(ctx context.Context, ref blobstore.Ref, content io.Reader) error {
	return s.upload(ctx, s.blobTarget(ref), content)
}

// PutObject implements blobstore.Driver: a named object is uploaded as a
// blob is (see RawStore), under the objects key prefix.
func (s *Store) PutObject(ctx context.Context, name string, content io.Reader) error {
	key, err := s.objectKey(name)
	if err != nil {
		return err
	}
	return s.upload(ctx, s.objectTarget(name, key), content)
}

// putTarget is where an upload goes.
type putTarget struct {
	key  string
	what string // names it in messages: a ref, or an object's name
	// guard runs change, the request that makes the upload visible; for a
	// blob it first keeps the old version for this process's readers.
	guard func(ctx context.Context, change func(context.Context) error) error
}

func (s *Store) blobTarget(ref blobstore.Ref) putTarget {
	return putTarget{key: s.key(ref), what: ref.String(), guard: func(ctx context.Context, change func(context.Context) error) error {
		return s.preservingReaders(ctx, ref, change)
	}}
}

// objectTarget: a named object has no RawOpen readers to preserve.
func (s *Store) objectTarget(name, key string) putTarget {
	return putTarget{key: key, what: "object " + name, guard: func(ctx context.Context, change func(context.Context) error) error {
		return change(ctx)
	}}
}

// upload sends content to target: one PUT if it fits in a part, else a
// multipart upload.
func (s *Store) upload(ctx context.Context, target putTarget, content io.Reader) error {
	content = blobstore.ContextReader(ctx, content)
	part, err := readPart(content, nil, s.partSize)
	if err == io.EOF {
		return target.guard(ctx, func(ctx context.Context) error {
			return s.putSingle(ctx, target.key, part)
		})
	}
	if err != nil {
		return fmt.Errorf("s3: storing %s: reading content: %w", target.what, err)
	}
	return s.putMultipart(ctx, target, part, content)
}

// Sync implements blobstore.Driver. It has nothing to do: a store is
// durable when the server acknowledged it, and RawStore and PutObject wait
// for that whether or not their context defers syncs.
func (s *Store) Sync(ctx context.Context) error { return nil }

// readPart reads up to partSize bytes into buf, reusing its memory and
// growing it as needed. It returns io.EOF when content ended (with the last
// bytes, if any) and any other error of content as is, even one returned
// together with data: unlike io.ReadFull it never drops an error because
// the buffer happened to fill up.
func readPart(content io.Reader, buf []byte, partSize int64) ([]byte, error) {
	buf = buf[:0]
	for int64(len(buf)) < partSize {
		if len(buf) == cap(buf) {
			grown := max(2*cap(buf), firstBufferSize)
			buf = append(make([]byte, 0, min(int64(grown), partSize)), buf...)
		}
		n, err := content.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// putSingle stores a blob that fits in one part with one PUT.
func (s *Store) putSingle(ctx context.Context, key string, data []byte) error {
	sha256Hex := payloadHash(data)
	return s.retry(ctx, "put", key, func(ctx context.Context) error {
		_, err := s.core.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), "", sha256Hex, putOptions)
		return err
	})
}

// payloadHash is the SHA-256 that the request signature covers: the server
// refuses a body that arrives different from what was sent.
func payloadHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// multipartUpload is one upload in progress.
type multipartUpload struct {
	store *Store
	key   string
	what  string // names it in messages (see putTarget)
	id    string
	parts []minio.CompletePart
	size  int64 // bytes sent in parts so far
}

func (s *Store) putMultipart(ctx context.Context, target putTarget, first []byte, content io.Reader) error {
	upload := &multipartUpload{store: s, key: target.key, what: target.what}
	err := s.retry(ctx, "start upload of", target.key, func(ctx context.Context) error {
		var err error
		upload.id, err = s.core.NewMultipartUpload(ctx, s.bucket, target.key, putOptions)
		return err
	})
	if err != nil {
		return err
	}
	err = upload.sendParts(ctx, first, content)
	if err == nil {
		err = target.guard(ctx, upload.complete)
	}
	if err != nil {
		upload.abort(ctx)
		return err
	}
	return nil
}

// sendParts uploads first and then the rest of content. While one part is
// sent, the next is read into a second buffer, so reading (and whatever
// the caller's reader computes) overlaps the network: two parts at most
// are in memory.
func (u *multipartUpload) sendParts(ctx context.Context, first []byte, content io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sending, spare := first, []byte(nil)
	for {
		if len(u.parts) == maxParts {
			return fmt.Errorf("s3: storing %s: it is larger than %d parts of %d bytes: raise the part size",
				u.what, maxParts, u.store.partSize)
		}
		sent := make(chan error, 1)
		go func(data []byte) { sent <- u.sendPart(ctx, data) }(sending)
		next, readErr := readPart(content, spare, u.store.partSize)
		if readErr != nil && readErr != io.EOF {
			cancel() // the upload is abandoned: stop sending
			<-sent
			return fmt.Errorf("s3: storing %s: reading content: %w", u.what, readErr)
		}
		if err := <-sent; err != nil {
			return err
		}
		if len(next) == 0 {
			return nil
		}
		if readErr == io.EOF {
			return u.sendPart(ctx, next)
		}
		sending, spare = next, sending
	}
}

// sendPart uploads data as the next part. Calls are sequential.
func (u *multipartUpload) sendPart(ctx context.Context, data []byte) error {
	s := u.store
	number := len(u.parts) + 1
	sha256Hex := payloadHash(data)
	var sent minio.ObjectPart
	err := s.retry(ctx, fmt.Sprintf("upload part %d of", number), u.key, func(ctx context.Context) error {
		var err error
		sent, err = s.core.PutObjectPart(ctx, s.bucket, u.key, u.id, number, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectPartOptions{Sha256Hex: sha256Hex, DisableContentSha256: true})
		return err
	})
	if err != nil {
		return err
	}
	u.parts = append(u.parts, minio.CompletePart{PartNumber: number, ETag: sent.ETag})
	u.size += int64(len(data))
	return nil
}

// complete makes the object visible. If a retried completion finds the
// upload gone, the previous attempt may have succeeded with its answer
// lost: an object of the right size under the key is taken as that.
func (u *multipartUpload) complete(ctx context.Context) error {
	s := u.store
	attempt := 0
	return s.retry(ctx, "complete upload of", u.key, func(ctx context.Context) error {
		attempt++
		_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, u.key, u.id, u.parts, putOptions)
		if code, _ := errorCode(err); code == minio.NoSuchUpload && attempt > 1 {
			info, statErr := s.core.StatObject(ctx, s.bucket, u.key, minio.StatObjectOptions{})
			if statErr == nil && info.Size == u.size {
				return nil
			}
		}
		return err
	})
}

// abort discards the parts sent. It runs after a failure, maybe because
// the caller's context ended, so it gets its own deadline. Its error is
// dropped: the caller reports the failure that caused it, and Sweep
// removes an upload that could not be aborted.
func (u *multipartUpload) abort(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	u.store.retryRaw(ctx, func(ctx context.Context) error {
		return u.store.core.AbortMultipartUpload(ctx, u.store.bucket, u.key, u.id)
	})
}
