package s3

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults for the Config fields left zero.
const (
	DefaultPartSize    = 16 << 20
	MinPartSize        = 5 << 20 // S3's minimum for every part but the last
	maxPartSize        = 5 << 30 // S3's maximum part size
	DefaultMaxAttempts = 5
	DefaultBaseDelay   = 100 * time.Millisecond
	DefaultMaxDelay    = 5 * time.Second
	DefaultStaleAfter  = 24 * time.Hour
)

// ErrInvalidConfig is wrapped by every error New returns for a Config that
// is wrong before any request is made.
var ErrInvalidConfig = errors.New("s3: invalid configuration")

// Config says where an S3 volume lives and how to reach it. String and
// GoString never show the secret key, so a Config may be logged or printed
// with %v, %+v or %#v.
type Config struct {
	// Endpoint is the server's base URL: http:// or https://, a host, an
	// optional port, and no path, query, fragment or user info, for example
	// "https://s3.eu-west-1.amazonaws.com" or "http://127.0.0.1:7070".
	Endpoint string
	// Bucket must exist already: New never creates one.
	Bucket string
	// Prefix is prepended to every object key. Empty, or a relative path
	// ending in "/" such as "stofuse/vol1/".
	Prefix string
	// Region is the bucket's region; empty lets the client ask the server.
	Region string

	// AccessKey and SecretKey sign every request; SessionToken is for
	// temporary credentials. See CredentialsFromEnv.
	AccessKey    string
	SecretKey    string
	SessionToken string

	// PartSize is how many bytes of a blob are held in memory and sent per
	// request: blobs up to PartSize go in one PUT, larger ones as a
	// multipart upload of PartSize parts. At least MinPartSize; zero means
	// DefaultPartSize. RawStore holds at most two parts in memory: one
	// being sent and the next being read.
	PartSize int64
	// Retry bounds how transient failures are retried.
	Retry RetryPolicy
	// StaleAfter is how old an unfinished multipart upload or a copy kept
	// for readers of another process must be before Sweep removes it. Zero
	// means DefaultStaleAfter.
	StaleAfter time.Duration

	// Transport carries the HTTP requests; nil means the client's default.
	// Set it for custom TLS roots, proxies, or to observe traffic in tests.
	Transport http.RoundTripper
}

// RetryPolicy bounds the retries of one S3 request that failed for a reason
// that may pass: a timeout, a refused or reset connection, a 5xx status, or
// throttling (SlowDown, 429). Other failures are never retried.
type RetryPolicy struct {
	// MaxAttempts is the number of tries per request, the first included;
	// 1 disables retries. Zero means DefaultMaxAttempts.
	MaxAttempts int
	// BaseDelay is the wait before the first retry; each later wait doubles,
	// up to MaxDelay, with jitter. Zero means DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay caps one wait. Zero means DefaultMaxDelay.
	MaxDelay time.Duration
}

// WithCredentials returns a copy of c that signs with creds.
func (c Config) WithCredentials(creds Credentials) Config {
	c.AccessKey, c.SecretKey, c.SessionToken = creds.AccessKey, creds.SecretKey, creds.SessionToken
	return c
}

// String describes the volume without the secret key or session token.
func (c Config) String() string {
	return fmt.Sprintf("s3 volume %s bucket %q prefix %q region %q access key %q",
		c.Endpoint, c.Bucket, c.Prefix, c.Region, c.AccessKey)
}

// GoString keeps %#v from printing the secret key.
func (c Config) GoString() string { return "s3.Config{" + c.String() + "}" }

// endpoint is a validated Config.Endpoint.
type endpoint struct {
	url    string // scheme://host[:port], for messages
	host   string // host[:port], as the client wants it
	secure bool
}

// parseEndpoint accepts exactly scheme://host[:port] with an optional "/"
// after it, so that a bucket or prefix typed into the URL is an error and
// not silently part of every request path.
func parseEndpoint(raw string) (endpoint, error) {
	bad := func(why string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("%w: endpoint %q %s", ErrInvalidConfig, raw, why)
	}
	if raw == "" {
		return bad("is empty: want a URL such as https://s3.example.com or http://127.0.0.1:7070")
	}
	if strings.TrimSpace(raw) != raw || strings.ContainsFunc(raw, unicode.IsControl) {
		return bad("contains spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must start with http:// or https://")
	case u.Opaque != "" || u.Host == "":
		return bad("has no host")
	case u.User != nil:
		return bad("must not hold user info: pass credentials separately")
	case u.Path != "" && u.Path != "/", u.RawPath != "":
		return bad("must not have a path: put the bucket in Bucket and key prefixes in Prefix")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("must not have a query or fragment")
	}
	if u.Hostname() == "" {
		return bad("has no host")
	}
	if port := u.Port(); strings.HasSuffix(u.Host, ":") || port != "" && !isPort(port) {
		return bad("has an invalid port")
	}
	return endpoint{url: u.Scheme + "://" + u.Host, host: u.Host, secure: u.Scheme == "https"}, nil
}

func isPort(s string) bool {
	if len(s) > 5 {
		return false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n > 0 && n < 65536
}

// checkBucketName applies S3's rules for bucket names (3 to 63 lowercase
// letters, digits, dots and hyphens, starting and ending with a letter or
// digit), so that a typo is caught before a request is signed.
func checkBucketName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: bucket name %q %s", ErrInvalidConfig, name, why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return bad("may hold only lowercase letters, digits, '.' and '-'")
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) || strings.Contains(name, "..") {
		return bad("must start and end with a letter or digit and not contain \"..\"")
	}
	return nil
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// checkPrefix requires a prefix that names a "directory" of keys: empty, or
// segments ending in "/". Without the trailing "/", prefix "vol1" would
// also list the keys of a volume at "vol10/".
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: prefix %q %s", ErrInvalidConfig, prefix, why)
	}
	switch {
	case !utf8.ValidString(prefix) || strings.ContainsFunc(prefix, unicode.IsControl):
		return bad("must be valid UTF-8 without control characters")
	case len(prefix) > 512:
		return bad("is longer than 512 bytes")
	case !strings.HasSuffix(prefix, "/"):
		return bad(fmt.Sprintf("must end with \"/\" (did you mean %q?)", prefix+"/"))
	case strings.HasPrefix(prefix, "/"):
		return bad("must not start with \"/\"")
	}
	for _, segment := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
		if segment == "" || segment == "." || segment == ".." {
			return bad("must not have empty, \".\" or \"..\" segments")
		}
	}
	return nil
}

// normalized checks c and fills in defaults.
func (c Config) normalized() (Config, endpoint, error) {
	ep, err := parseEndpoint(c.Endpoint)
	if err != nil {
		return c, ep, err
	}
	if err := checkBucketName(c.Bucket); err != nil {
		return c, ep, err
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return c, ep, err
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return c, ep, fmt.Errorf("%w: no credentials: set AccessKey and SecretKey (see CredentialsFromEnv)", ErrInvalidConfig)
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartSize < MinPartSize || c.PartSize > maxPartSize {
		return c, ep, fmt.Errorf("%w: part size %d is outside S3's limits [%d, %d]", ErrInvalidConfig, c.PartSize, MinPartSize, maxPartSize)
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	c.Retry = c.Retry.normalized()
	return c, ep, nil
}

func (p RetryPolicy) normalized() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	return p
}
