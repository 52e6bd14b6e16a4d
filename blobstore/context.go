package blobstore

import (
	"context"
	"io"
)

// ContextReader returns a reader that fails with ctx's error once ctx is
// done: a long copy (a RawStore, a scrub) then stops at its next read.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return contextReader{ctx, r}
}

type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
