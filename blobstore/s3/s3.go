// Package s3 stores blobs as objects in an S3 bucket, under a key prefix,
// on any S3-compatible server (AWS S3, Ceph RGW, MinIO, SeaweedFS, Versity).
//
// Layout: a blob with ref abcdef... is the object PREFIX + "abc/abcdef...",
// sharded like localfs. S3 lists keys in byte order, and the shard is the
// ref's own first characters, so listing the prefix yields ascending refs.
// Named objects are PREFIX + "objects/" + the name with each '/' spelled
// '+' (see blobstore.FlatObjectName).
//
// Writes: a blob is read into memory one part (Config.PartSize) at a time,
// never whole (the next part is read while one is sent, so two parts at
// most). A blob that fits in one part is sent in one PUT; a larger one
// as a multipart upload that is completed only after the content reader
// returned io.EOF. S3 makes an object visible only when its PUT or its
// multipart completion succeeds, so a reader never sees a partial object,
// and a reader error, even one returned with the last bytes, or a cancelled
// context aborts the upload and leaves any old object as it was.
//
// Retries: each request is retried on transient failures (see RetryPolicy).
// This works for uploads too because every request body is a part held in
// memory: the content reader is read once and never rewound. If the retries
// of one part are used up the upload is aborted and RawStore fails; the
// caller must store the blob again from the start with a fresh reader.
//
// Reads: RawFetch streams the object; RawOpen pins the object's ETag and
// reads with ranged GETs of just the bytes asked for, sent with If-Match, so
// a replaced object is detected instead of mixing two blobs' bytes. See
// hold.go for how readers in this process keep reading a blob that is
// replaced or removed.
//
// Durability is the server's: RawStore returns when the server has
// acknowledged the object, which AWS S3 stores redundantly before
// answering; a single-node server is only as durable as it makes its disk.
package s3

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/stofuse/stofuse/blobstore"
)

const (
	shardLen = 3
	// holdDir is where copies kept for open readers live, under the prefix.
	// It cannot be mistaken for a shard: shards are three hex characters.
	holdDir = "hold/"
	// RoutingCost of an S3 volume: every read is a network round trip.
	RoutingCost = 100
	// readAhead is how many frames a sequential reader should keep in
	// flight: enough requests to hide a round trip each.
	readAhead = 16
)

// Store is a blobstore.Driver over an S3 bucket and key prefix.
type Store struct {
	core       minio.Core
	endpoint   endpoint
	bucket     string
	prefix     string
	accessKey  string // for messages; the secret key lives only in the client
	partSize   int64
	policy     RetryPolicy
	staleAfter time.Duration

	readers openReaders
	// preserveMu serializes the operations that must copy an object aside
	// for open readers before they replace or remove it (see hold.go).
	preserveMu sync.Mutex
}

var (
	_ blobstore.Driver             = (*Store)(nil)
	_ blobstore.RandomAccessDriver = (*Store)(nil)
	_ blobstore.Sweeper            = (*Store)(nil)
)

// New returns a Store for cfg after checking that the bucket exists and
// that the credentials may list it: a wrong endpoint, bucket or credential
// is one clear error here rather than at the first write.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, ep, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	client, err := minio.New(ep.host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:    ep.secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
		// Store.retry does all retrying, with the caller's bounds; the
		// client's own retries would multiply them.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, cfg, err)
	}
	s := &Store{
		core:       minio.Core{Client: client},
		endpoint:   ep,
		bucket:     cfg.Bucket,
		prefix:     cfg.Prefix,
		accessKey:  cfg.AccessKey,
		partSize:   cfg.PartSize,
		policy:     cfg.Retry,
		staleAfter: cfg.StaleAfter,
	}
	if err := s.checkBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// checkBucket lists at most one key. A listing, unlike a HEAD request, has
// an error body, so the server says which of credentials, permission or
// bucket is wrong.
func (s *Store) checkBucket(ctx context.Context) error {
	return s.retry(ctx, "list", s.prefix, func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for object := range s.core.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
			return object.Err
		}
		return nil
	})
}

// String names the volume: endpoint, bucket and prefix.
func (s *Store) String() string {
	return fmt.Sprintf("s3 %s bucket %q prefix %q", s.endpoint.url, s.bucket, s.prefix)
}

// RoutingCost implements blobstore.Driver.
func (s *Store) RoutingCost() int { return RoutingCost }

// Properties implements blobstore.Driver: a network store, where one
// streaming GET of a blob beats a request per frame.
func (s *Store) Properties() blobstore.Properties {
	return blobstore.Properties{Remote: true, PreferStream: true, ReadAhead: readAhead}
}

func (s *Store) key(ref blobstore.Ref) string {
	hex := ref.String()
	return s.prefix + hex[:shardLen] + "/" + hex
}

// refOfKey is the inverse of key; ok is false for keys that are not blobs
// (holds, strays, uppercase spellings).
func (s *Store) refOfKey(key string) (ref blobstore.Ref, ok bool) {
	rest, found := strings.CutPrefix(key, s.prefix)
	if !found {
		return ref, false
	}
	shard, name, found := strings.Cut(rest, "/")
	if !found {
		return ref, false
	}
	ref, err := blobstore.ParseRef(name)
	if err != nil || ref.String()[:shardLen] != shard {
		return ref, false
	}
	return ref, true
}

// Stat implements blobstore.Driver with a HEAD request.
// The modification time is the object's Last-Modified, to the second.
func (s *Store) Stat(ctx context.Context, ref blobstore.Ref) (blobstore.BlobInfo, error) {
	info, err := s.statKey(ctx, s.key(ref))
	if err != nil {
		return blobstore.BlobInfo{}, err
	}
	return blobstore.BlobInfo{Ref: ref, Size: info.Size, ModTime: info.LastModified}, nil
}

func (s *Store) statKey(ctx context.Context, key string) (minio.ObjectInfo, error) {
	var info minio.ObjectInfo
	err := s.retry(ctx, "stat", key, func(ctx context.Context) error {
		var err error
		info, err = s.core.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		return err
	})
	return info, err
}

// Remove implements blobstore.Driver. S3's DELETE succeeds whether or not
// the key exists, so a HEAD first tells a missing blob apart; two Removes
// racing on one ref may both succeed. Readers of this process that opened
// the blob keep reading a copy (hold.go); readers of other processes get
// ErrObjectChanged.
func (s *Store) Remove(ctx context.Context, ref blobstore.Ref) error {
	key := s.key(ref)
	if _, err := s.statKey(ctx, key); err != nil {
		return err
	}
	remove := func(ctx context.Context) error {
		return s.retry(ctx, "remove", key, func(ctx context.Context) error {
			return s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
		})
	}
	return s.preservingReaders(ctx, ref, remove)
}

// List implements blobstore.Driver. A listing that fails for a transient
// reason resumes after the last key it returned; the retry policy bounds
// the failures in a row, not over the whole listing.
func (s *Store) List(ctx context.Context, fn func(blobstore.BlobInfo) error) error {
	lastKey := ""
	for failures := 1; ; failures++ {
		resumedFrom := lastKey
		err, fnErr := s.listFrom(ctx, &lastKey, fn)
		if fnErr != nil {
			return fnErr
		}
		if err == nil {
			return nil
		}
		if lastKey != resumedFrom {
			failures = 1
		}
		if ctx.Err() != nil || !isTransient(err) || failures >= s.policy.MaxAttempts ||
			!sleep(ctx, s.policy.delay(failures)) {
			return s.fail("list", s.prefix, err, failures)
		}
	}
}

// listFrom lists the blobs after *lastKey, advancing it. It returns the
// listing's error, or fn's error when fn stopped it.
func (s *Store) listFrom(ctx context.Context, lastKey *string, fn func(blobstore.BlobInfo) error) (err, fnErr error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	options := minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true, StartAfter: *lastKey}
	for object := range s.core.ListObjectsIter(ctx, s.bucket, options) {
		if object.Err != nil {
			return object.Err, nil
		}
		*lastKey = object.Key
		if ref, ok := s.refOfKey(object.Key); ok {
			if err := fn(blobstore.BlobInfo{Ref: ref, Size: object.Size, ModTime: object.LastModified}); err != nil {
				return nil, err
			}
		}
	}
	return ctx.Err(), nil
}
