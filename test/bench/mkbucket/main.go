// Command mkbucket creates a bucket on an S3 server, for the benchmark
// scripts that start their own server (test/bench/s3.sh). A bucket that
// exists already and belongs to the caller is not an error. With -wait D it
// retries for up to D while the server does not answer (it is starting),
// so a script can start the server and run mkbucket at once.
//
//	go run ./test/bench/mkbucket -endpoint http://127.0.0.1:7070 -access KEY -secret SECRET -bucket NAME [-wait 30s]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	endpoint := flag.String("endpoint", "", "the server's URL, http(s)://host:port")
	access := flag.String("access", "", "access key")
	secret := flag.String("secret", "", "secret key")
	bucket := flag.String("bucket", "", "the bucket to create")
	region := flag.String("region", "us-east-1", "the bucket's region")
	wait := flag.Duration("wait", 0, "how long to retry while the server does not answer")
	flag.Parse()
	if *endpoint == "" || *access == "" || *secret == "" || *bucket == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkbucket -endpoint URL -access KEY -secret SECRET -bucket NAME [-region R] [-wait D]")
		os.Exit(2)
	}
	if err := mkbucket(*endpoint, *access, *secret, *bucket, *region, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func mkbucket(endpoint, access, secret, bucket, region string, wait time.Duration) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("endpoint %q is not http(s)://host[:port]", endpoint)
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(access, secret, ""),
		Secure: u.Scheme == "https",
		Region: region,
		// One try per request: the loop below does the waiting.
		MaxRetries: 1,
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
		cancel()
		code := minio.ToErrorResponse(err).Code
		if err == nil || code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		// An S3 error is the server's answer; anything else (connection
		// refused, a timeout) means it does not answer yet.
		if code != "" || time.Now().After(deadline) {
			return fmt.Errorf("creating bucket %q on %s: %w", bucket, endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
