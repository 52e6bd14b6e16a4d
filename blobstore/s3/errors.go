package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
)

// Conditions a caller may test for with errors.Is. Every error of a Store
// names the endpoint and bucket; none holds the secret key.
var (
	// ErrCredentials: the server refused the access key or the signature
	// (InvalidAccessKeyId, SignatureDoesNotMatch, an invalid or expired
	// session token).
	ErrCredentials = errors.New("s3: credentials refused")
	// ErrAccessDenied: the credentials are valid but lack a permission.
	ErrAccessDenied = errors.New("s3: access denied")
	// ErrNoSuchBucket: the configured bucket does not exist.
	ErrNoSuchBucket = errors.New("s3: no such bucket")
	// ErrUnavailable: a request kept failing for a transient reason until
	// the retry policy gave up.
	ErrUnavailable = errors.New("s3: server unavailable")
	// ErrObjectChanged: a reader opened by RawOpen or RawFetch found its
	// object replaced or removed by someone it could not protect it from
	// (another process), so it fails rather than return bytes of two blobs.
	ErrObjectChanged = errors.New("s3: object changed since it was opened")
)

// errorCode returns the S3 error code and HTTP status of err, if err came
// from the server.
func errorCode(err error) (code string, status int) {
	var response minio.ErrorResponse
	if errors.As(err, &response) {
		return response.Code, response.StatusCode
	}
	return "", 0
}

func isNotFound(err error) bool {
	code, status := errorCode(err)
	// Not any 404: Versity, for one, answers an unknown access key with
	// 404 XAdminUserNotFound.
	return code == minio.NoSuchKey || code == "NotFound" || status == http.StatusNotFound && code == ""
}

func isPreconditionFailed(err error) bool {
	code, status := errorCode(err)
	return code == minio.PreconditionFailed || status == http.StatusPreconditionFailed
}

// credentialCodes are the answers to a wrong access key, secret key or
// session token.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "InvalidToken": true,
	"ExpiredToken": true, "InvalidClientTokenId": true, "XAdminUserNotFound": true,
}

var transientCodes = map[string]bool{
	"RequestTimeout": true, "InternalError": true,
	"ServiceUnavailable": true, "SlowDown": true, "SlowDownRead": true, "SlowDownWrite": true,
	"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"RequestThrottled": true, "TooManyRequests": true, "OperationAborted": true,
}

var transientStatuses = map[int]bool{
	http.StatusRequestTimeout: true, http.StatusTooManyRequests: true,
	http.StatusInternalServerError: true, http.StatusBadGateway: true,
	http.StatusServiceUnavailable: true, http.StatusGatewayTimeout: true,
}

// isTransient reports whether a request that failed with err may succeed
// if sent again unchanged.
func isTransient(err error) bool {
	if code, status := errorCode(err); code != "" || status != 0 {
		return transientCodes[code] || transientStatuses[status]
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's context; a transport timeout is a net.Error
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	for _, errno := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, errno) {
			return true
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true // the connection closed mid-response
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return !isConfigurationError(urlErr)
	}
	return false
}

// isConfigurationError: transport failures that no retry will fix.
func isConfigurationError(err error) bool {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var header tls.RecordHeaderError
	var dns *net.DNSError
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &header) ||
		errors.As(err, &dns) && dns.IsNotFound
}

// fail turns a failed request into the error a Store method returns: it
// names the endpoint, bucket and operation, and wraps a sentinel for the
// conditions callers act on. attempts is how many tries were made.
func (s *Store) fail(op, key string, err error, attempts int) error {
	where := fmt.Sprintf("s3 %s bucket %q: %s %s", s.endpoint.url, s.bucket, op, key)
	code, _ := errorCode(err)
	switch {
	case isNotFound(err):
		return fmt.Errorf("%s: %w", where, fs.ErrNotExist)
	case code == minio.NoSuchBucket:
		return fmt.Errorf("s3 %s: bucket %q does not exist (create it first; stofuse never creates buckets): %w",
			s.endpoint.url, s.bucket, ErrNoSuchBucket)
	case credentialCodes[code]:
		return fmt.Errorf("s3 %s bucket %q: the server refused the credentials (%s: %s): check access key %q and its secret key: %w",
			s.endpoint.url, s.bucket, code, serverMessage(err), s.accessKey, ErrCredentials)
	case code == minio.AccessDenied || code == "AllAccessDisabled" || code == "AccountProblem":
		return fmt.Errorf("s3 %s bucket %q: access denied to %s %s (%s): the credentials of access key %q lack a permission, or are wrong: %w",
			s.endpoint.url, s.bucket, op, key, serverMessage(err), s.accessKey, ErrAccessDenied)
	case attempts >= s.policy.MaxAttempts && isTransient(err):
		return fmt.Errorf("%s: still failing after %d attempts: %w: %w", where, attempts, ErrUnavailable, withCode(err))
	}
	return fmt.Errorf("%s: %w", where, withCode(err))
}

// withCode puts the server's error code before its message, which alone
// can be vague ("Please reduce your request rate.").
func withCode(err error) error {
	var response minio.ErrorResponse
	if !errors.As(err, &response) || response.Code == "" || strings.Contains(response.Code, " ") {
		return err // no code, or only the HTTP status line that is the message too
	}
	return fmt.Errorf("%s: %w", response.Code, err)
}

func serverMessage(err error) string {
	var response minio.ErrorResponse
	if errors.As(err, &response) && response.Message != "" {
		return response.Message
	}
	return err.Error()
}
