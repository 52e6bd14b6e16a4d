package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/time/rate"

	"github.com/stofuse/stofuse/diskaccess"
)

// ParseRate parses a rate like 50M or 1.5G: bytes per second, in powers
// of 1024, with an optional "B", "/s" or "iB".
func ParseRate(s string) (float64, error) {
	text := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "/s"), "B")
	text = strings.TrimSuffix(text, "i")
	scale := 1.0
	if n := len(text); n > 0 {
		if i := strings.IndexByte("KMGT", text[n-1]&^0x20); i >= 0 {
			scale = float64(int64(1) << (10 * (i + 1)))
			text = text[:n-1]
		}
	}
	value, err := strconv.ParseFloat(text, 64)
	if err != nil || value <= 0 {
		return 0, fmt.Errorf("%q is not a rate such as 50M", s)
	}
	return value * scale, nil
}

// limitReads paces the volume reads done under the returned context to
// bytesPerSecond (0: no limit).
func limitReads(ctx context.Context, bytesPerSecond float64) context.Context {
	if bytesPerSecond <= 0 {
		return ctx
	}
	burst := int(min(bytesPerSecond, 1<<20))
	return diskaccess.WithReadLimiter(ctx, rate.NewLimiter(rate.Limit(bytesPerSecond), burst))
}
