package s3

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseEndpoint(t *testing.T) {
	valid := map[string]endpoint{
		"http://127.0.0.1:7070":     {url: "http://127.0.0.1:7070", host: "127.0.0.1:7070"},
		"https://s3.amazonaws.com":  {url: "https://s3.amazonaws.com", host: "s3.amazonaws.com", secure: true},
		"https://s3.example.com/":   {url: "https://s3.example.com", host: "s3.example.com", secure: true},
		"http://[::1]:9000":         {url: "http://[::1]:9000", host: "[::1]:9000"},
		"https://minio.local:65535": {url: "https://minio.local:65535", host: "minio.local:65535", secure: true},
	}
	for raw, want := range valid {
		if got, err := parseEndpoint(raw); err != nil || got != want {
			t.Errorf("parseEndpoint(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	invalid := []string{
		"", "127.0.0.1:9000", "s3.example.com", "ftp://s3.example.com", "http://", "https:///bucket",
		"http:s3.example.com", "http://s3.example.com/bucket", "https://s3.example.com/bucket/prefix/",
		"http://user:pw@s3.example.com", "http://key@s3.example.com", "http://s3.example.com?x=1",
		"http://s3.example.com/?", "http://s3.example.com#f", "http://s3.example.com:99999",
		"http://s3.example.com:0", "http://s3.example.com:", "http://s3.example.com:x", " http://s3.example.com",
		"http://s3.example.com\n", "HTTP://s3.example.com//", "http://s3.example.com/%2F",
	}
	for _, raw := range invalid {
		if got, err := parseEndpoint(raw); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("parseEndpoint(%q) = %+v, %v; want ErrInvalidConfig", raw, got, err)
		}
	}
}

func TestCheckPrefixAndBucket(t *testing.T) {
	for _, prefix := range []string{"", "stofuse/", "a/b/c/", "vol-1/"} {
		if err := checkPrefix(prefix); err != nil {
			t.Errorf("checkPrefix(%q) = %v", prefix, err)
		}
	}
	for _, prefix := range []string{"vol1", "/vol1/", "a//b/", "./", "a/../", "/", "a\x00/", "\xff/"} {
		if err := checkPrefix(prefix); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("checkPrefix(%q) = %v, want ErrInvalidConfig", prefix, err)
		}
	}
	if err := checkPrefix("vol1"); !strings.Contains(fmt.Sprint(err), `"vol1/"`) {
		t.Errorf("checkPrefix(vol1) = %v, want a hint to add the slash", err)
	}
	for _, bucket := range []string{"abc", "my.bucket-1", strings.Repeat("a", 63)} {
		if err := checkBucketName(bucket); err != nil {
			t.Errorf("checkBucketName(%q) = %v", bucket, err)
		}
	}
	for _, bucket := range []string{"", "ab", "Bucket", "-abc", "abc-", "a..b", "a_b", "a/b", strings.Repeat("a", 64)} {
		if err := checkBucketName(bucket); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("checkBucketName(%q) = %v, want ErrInvalidConfig", bucket, err)
		}
	}
}

// TestNewRejectsBadConfig: New refuses before sending any request.
func TestNewRejectsBadConfig(t *testing.T) {
	good := Config{Endpoint: "http://127.0.0.1:1", Bucket: "bucket", AccessKey: "a", SecretKey: "very-secret"}
	for name, change := range map[string]func(*Config){
		"path in endpoint": func(c *Config) { c.Endpoint = "http://127.0.0.1:1/bucket" },
		"bad bucket":       func(c *Config) { c.Bucket = "Bucket" },
		"bad prefix":       func(c *Config) { c.Prefix = "p" },
		"no secret":        func(c *Config) { c.SecretKey = "" },
		"no access key":    func(c *Config) { c.AccessKey = "" },
		"small parts":      func(c *Config) { c.PartSize = MinPartSize - 1 },
	} {
		cfg := good
		change(&cfg)
		_, err := New(context.Background(), cfg)
		if !errors.Is(err, ErrInvalidConfig) || strings.Contains(err.Error(), "very-secret") {
			t.Errorf("%s: New = %v, want ErrInvalidConfig without the secret", name, err)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	cfg := Config{Endpoint: "https://s3.example.com", Bucket: "b", AccessKey: "AKIAEXAMPLE",
		SecretKey: "super-secret-key", SessionToken: "session-token-secret"}
	creds := Credentials{AccessKey: "AKIAEXAMPLE", SecretKey: "super-secret-key", SessionToken: "session-token-secret", Source: "test"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, value := range []any{cfg, &cfg, creds, &creds, []Config{cfg}, map[string]Credentials{"x": creds}} {
			out := fmt.Sprintf(format, value)
			if strings.Contains(out, "secret-key") || strings.Contains(out, "token-secret") {
				t.Errorf("Sprintf(%s, %T) = %s: shows a secret", format, value, out)
			}
		}
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials")
	content := "# comment\n[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = default-secret\n\n" +
		"[other]\nAWS_ACCESS_KEY_ID=OTHERKEY\naws_secret_access_key=other-secret\naws_session_token = tok\n" +
		"[broken]\naws_access_key_id broken-secret-line\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                              string
		env                               map[string]string
		wantAccess, wantSecret, wantToken string
		wantErr                           bool
	}{
		{"environment", map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "t"},
			"ENVKEY", "env-secret", "t", false},
		{"half environment", map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY"}, "", "", "", true},
		{"file default", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file}, "DEFAULTKEY", "default-secret", "", false},
		{"file profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "other"}, "OTHERKEY", "other-secret", "tok", false},
		{"missing profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "none"}, "", "", "", true},
		{"broken profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "broken"}, "", "", "", true},
		{"missing file", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none")}, "", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"} {
				t.Setenv(name, tc.env[name])
			}
			t.Setenv("HOME", dir) // no ~/.aws/credentials of the machine's
			creds, err := CredentialsFromEnv()
			if tc.wantErr {
				if err == nil || strings.Contains(err.Error(), "broken-secret-line") {
					t.Fatalf("CredentialsFromEnv = %v, %v; want an error that shows no secret", creds, err)
				}
				return
			}
			if err != nil || creds.AccessKey != tc.wantAccess || creds.SecretKey != tc.wantSecret || creds.SessionToken != tc.wantToken {
				t.Fatalf("CredentialsFromEnv = %v (token %q), %v; want %s", creds, creds.SessionToken, err, tc.wantAccess)
			}
			cfg := Config{}.WithCredentials(creds)
			if cfg.AccessKey != tc.wantAccess || cfg.SecretKey != tc.wantSecret {
				t.Fatalf("WithCredentials did not set the keys")
			}
		})
	}
}

func TestRetryDelayIsBounded(t *testing.T) {
	p := RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: 80 * time.Millisecond}.normalized()
	for attempt := 1; attempt < 70; attempt++ {
		want := min(10*time.Millisecond<<min(attempt-1, 10), 80*time.Millisecond)
		if d := p.delay(attempt); d < want/2 || d > want {
			t.Fatalf("delay(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
		}
	}
}
