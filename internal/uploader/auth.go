package uploader

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Signer adds credentials to a request just before it is sent (again on
// every retry, so that time-bound signatures stay fresh).
type Signer interface {
	// Sign authorizes req, whose body has the given hex SHA-256 (empty
	// unless the Signer also implements PayloadSigner and asks for it).
	// An error stops the upload without a retry.
	Sign(ctx context.Context, req *http.Request, payloadSHA256 string) error
}

// PayloadSigner is implemented by a Signer that needs the SHA-256 of each
// body; the uploader computes it only then.
type PayloadSigner interface {
	SignsPayload() bool
}

// Bearer sends a token as "Authorization: Bearer", the default token source
// of Mizuchi's JWT authentication.
type Bearer string

// Sign implements Signer.
func (b Bearer) Sign(_ context.Context, req *http.Request, _ string) error {
	req.Header.Set("Authorization", "Bearer "+string(b))
	return nil
}

// SigV4 signs requests with AWS Signature Version 4 for the s3 service.
// The payload is always signed (x-amz-content-sha256 is the hex SHA-256 of
// the body, never UNSIGNED-PAYLOAD): the server then refuses a body altered
// in transit or by a proxy, which is worth reading each part twice.
type SigV4 struct {
	AccessKey, SecretKey, SessionToken string
	Region                             string
	// Now is the signing clock; time.Now when nil.
	Now func() time.Time
}

// Sign implements Signer.
func (s SigV4) Sign(ctx context.Context, req *http.Request, payloadSHA256 string) error {
	if s.AccessKey == "" || s.SecretKey == "" {
		return errors.New("sigv4: access key and secret key are required")
	}
	if payloadSHA256 == "" {
		return errors.New("sigv4: missing payload hash")
	}
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadSHA256)
	creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey, SessionToken: s.SessionToken}
	// A signer per request: v4.Signer caches derived keys by access key id
	// alone, which would let one secret's key sign for another. Deriving
	// the key costs four HMACs. S3 canonicalises the path encoded once, and
	// the request path is already encoded the S3 way, so it is signed as
	// sent.
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	return signer.SignHTTP(ctx, creds, req, payloadSHA256, "s3", region, now())
}

// SignsPayload implements PayloadSigner.
func (SigV4) SignsPayload() bool { return true }

var (
	_ Signer        = Bearer("")
	_ Signer        = SigV4{}
	_ PayloadSigner = SigV4{}
)
