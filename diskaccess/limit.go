package diskaccess

import (
	"context"
	"io"
)

// ReadLimiter paces reads of stored bytes, so that a scrub or a replication
// leaves the disk to others (a mount's readers). golang.org/x/time/rate's
// Limiter is one. WaitN is never asked for more than Burst bytes.
type ReadLimiter interface {
	WaitN(ctx context.Context, n int) error
	Burst() int
}

type readLimiterKey struct{}

// WithReadLimiter returns a context under which Scrub and Replicate read
// stored bytes no faster than l allows.
func WithReadLimiter(ctx context.Context, l ReadLimiter) context.Context {
	return context.WithValue(ctx, readLimiterKey{}, l)
}

// limited wraps r in the context's read limiter, if there is one.
func limited(ctx context.Context, r io.Reader) io.Reader {
	l, ok := ctx.Value(readLimiterKey{}).(ReadLimiter)
	if !ok {
		return r
	}
	return &limitedReader{ctx: ctx, r: r, limiter: l}
}

type limitedReader struct {
	ctx     context.Context
	r       io.Reader
	limiter ReadLimiter
}

func (l *limitedReader) Read(p []byte) (int, error) {
	p = p[:min(len(p), l.limiter.Burst())]
	if err := l.limiter.WaitN(l.ctx, len(p)); err != nil {
		return 0, err
	}
	return l.r.Read(p)
}
