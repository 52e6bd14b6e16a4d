package s3

import (
	"context"
	"math/rand/v2"
	"time"
)

// retry runs request until it succeeds, fails for a reason that is not
// transient, the context ends, or the policy's attempts are used up. It
// returns the last error through s.fail, so the caller gets one clear
// error. request must be safe to repeat: every caller sends bytes it holds
// in memory, never a stream it cannot rewind.
func (s *Store) retry(ctx context.Context, op, key string, request func(ctx context.Context) error) error {
	attempts, err := s.retryRaw(ctx, request)
	if err != nil {
		return s.fail(op, key, err, attempts)
	}
	return nil
}

// retryRaw is retry without the wrapping: it returns the number of tries
// made and the last error as the client reported it.
func (s *Store) retryRaw(ctx context.Context, request func(ctx context.Context) error) (attempts int, err error) {
	for attempts = 1; ; attempts++ {
		if err = ctx.Err(); err != nil {
			return attempts, err
		}
		err = request(ctx)
		if err == nil || !isTransient(err) || attempts >= s.policy.MaxAttempts {
			return attempts, err
		}
		if !sleep(ctx, s.policy.delay(attempts)) {
			return attempts, err
		}
	}
}

// delay is the wait after the given failed attempt: exponential from
// BaseDelay, capped at MaxDelay, with "equal jitter" (half fixed, half
// random) so that many clients throttled together do not retry together.
func (p RetryPolicy) delay(attempt int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < attempt && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits d or until ctx ends, and reports whether it waited the whole
// time.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
