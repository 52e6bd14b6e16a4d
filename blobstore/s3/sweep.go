package s3

import (
	"context"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Sweep implements blobstore.Sweeper. What interrupted work leaves in S3 is
// invisible to readers but costs storage: multipart uploads never completed
// nor aborted (the process died, or the server was down when RawStore
// tried to abort), and hold copies of a process that died with readers
// open. S3 cannot tell whether another process still works on them, so
// Sweep removes only those older than Config.StaleAfter, and never a hold
// of a reader of this process. It returns how many it removed.
func (s *Store) Sweep(ctx context.Context) (removed int, err error) {
	cutoff := time.Now().Add(-s.staleAfter)
	uploads, err := s.sweepUploads(ctx, cutoff)
	if err != nil {
		return uploads, err
	}
	holds, err := s.sweepHolds(ctx, cutoff)
	return uploads + holds, err
}

func (s *Store) sweepUploads(ctx context.Context, cutoff time.Time) (removed int, err error) {
	keyMarker, uploadMarker := "", ""
	for {
		var page minio.ListMultipartUploadsResult
		err := s.retry(ctx, "list uploads", s.prefix, func(ctx context.Context) error {
			var err error
			page, err = s.core.ListMultipartUploads(ctx, s.bucket, s.prefix, keyMarker, uploadMarker, "", 1000)
			return err
		})
		if err != nil {
			return removed, err
		}
		for _, upload := range page.Uploads {
			if !upload.Initiated.Before(cutoff) {
				continue
			}
			err := s.retry(ctx, "abort upload of", upload.Key, func(ctx context.Context) error {
				return s.core.AbortMultipartUpload(ctx, s.bucket, upload.Key, upload.UploadID)
			})
			if code, _ := errorCode(err); err != nil && code != minio.NoSuchUpload {
				return removed, err
			}
			removed++
		}
		if !page.IsTruncated || page.NextKeyMarker == "" && page.NextUploadIDMarker == "" {
			return removed, nil
		}
		keyMarker, uploadMarker = page.NextKeyMarker, page.NextUploadIDMarker
	}
}

func (s *Store) sweepHolds(ctx context.Context, cutoff time.Time) (removed int, err error) {
	var stale []string
	err = s.retry(ctx, "list", s.prefix+holdDir, func(ctx context.Context) error {
		stale = stale[:0]
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		options := minio.ListObjectsOptions{Prefix: s.prefix + holdDir, Recursive: true}
		for object := range s.core.ListObjectsIter(ctx, s.bucket, options) {
			if object.Err != nil {
				return object.Err
			}
			if object.LastModified.Before(cutoff) && !strings.HasSuffix(object.Key, "/") && !s.readers.isHeld(object.Key) {
				stale = append(stale, object.Key)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, key := range stale {
		err := s.retry(ctx, "remove hold", key, func(ctx context.Context) error {
			return s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
		})
		if err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}
