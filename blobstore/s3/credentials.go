package s3

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Credentials sign S3 requests. String and GoString show the access key
// only: the secret key and session token are never printed.
type Credentials struct {
	AccessKey    string
	SecretKey    string
	SessionToken string
	// Source says where they came from, for messages: "environment" or
	// the path and profile of a credentials file.
	Source string
}

func (c Credentials) String() string {
	return fmt.Sprintf("access key %q from %s (secret key hidden)", c.AccessKey, c.Source)
}

// GoString keeps %#v from printing the secret key.
func (c Credentials) GoString() string { return "s3.Credentials{" + c.String() + "}" }

// ErrNoCredentials is wrapped by CredentialsFromEnv when neither the
// environment nor a credentials file holds any.
var ErrNoCredentials = errors.New("s3: no credentials")

// CredentialsFromEnv reads credentials the way AWS tools do, from:
//  1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if
//     set); one without the other is an error rather than a fall-through;
//  2. else the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, or
//     ~/.aws/credentials), profile AWS_PROFILE or "default". Only the
//     static keys of a profile are read: credential_process and SSO
//     entries are not run.
func CredentialsFromEnv() (Credentials, error) {
	access, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case access != "" && secret != "":
		return Credentials{AccessKey: access, SecretKey: secret,
			SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "environment"}, nil
	case access != "":
		return Credentials{}, fmt.Errorf("%w: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not", ErrNoCredentials)
	case secret != "":
		return Credentials{}, fmt.Errorf("%w: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not", ErrNoCredentials)
	}
	path := os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return Credentials{}, fmt.Errorf("%w: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and there is no home directory for ~/.aws/credentials", ErrNoCredentials)
		}
		path = filepath.Join(home, ".aws", "credentials")
	}
	profile := os.Getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	return CredentialsFromFile(path, profile)
}

// CredentialsFromFile reads aws_access_key_id, aws_secret_access_key and
// aws_session_token from one profile of an AWS shared credentials file.
func CredentialsFromFile(path, profile string) (Credentials, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, fmt.Errorf("%w: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and %s does not exist", ErrNoCredentials, path)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("s3: credentials file: %w", err)
	}
	defer f.Close()
	values, err := readProfile(f, profile)
	if err != nil {
		return Credentials{}, fmt.Errorf("s3: credentials file %s: %w", path, err)
	}
	creds := Credentials{
		AccessKey:    values["aws_access_key_id"],
		SecretKey:    values["aws_secret_access_key"],
		SessionToken: values["aws_session_token"],
		Source:       fmt.Sprintf("%s profile %q", path, profile),
	}
	if creds.AccessKey == "" || creds.SecretKey == "" {
		return Credentials{}, fmt.Errorf("%w: profile %q of %s lacks aws_access_key_id or aws_secret_access_key", ErrNoCredentials, profile, path)
	}
	return creds, nil
}

// readProfile returns the key = value pairs of section [profile] of an INI
// file, keys lowercased. Lines starting with # or ; are comments.
func readProfile(f *os.File, profile string) (map[string]string, error) {
	values := map[string]string{}
	inProfile := false
	scanner := bufio.NewScanner(f)
	for lineNo := 1; scanner.Scan(); lineNo++ {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: unterminated section header", lineNo)
			}
			inProfile = strings.TrimSpace(line[1:len(line)-1]) == profile
		case inProfile:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				// Never quote the line: it may hold a secret.
				return nil, fmt.Errorf("line %d: want key = value", lineNo)
			}
			values[strings.ToLower(strings.TrimSpace(key))] = strings.TrimSpace(value)
		}
	}
	return values, scanner.Err()
}
