package sigv4

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

type s3Examples struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	} `json:"credentials"`
	Region     string `json:"region"`
	AmzDate    string `json:"amz_date"`
	HeaderAuth []struct {
		Name, Method, Host, Path, Query, Body string
		Headers                               map[string]string
		SignedHeaders                         string `json:"signed_headers"`
		ExpectedSignature                     string `json:"expected_signature"`
	} `json:"header_auth"`
	Presigned []struct {
		Name, Method, Host, Path, URL string
		ExpectedSignature             string `json:"expected_signature"`
	} `json:"presigned"`
	Streaming struct {
		Method, Host, Path string
		Headers            map[string]string
		SignedHeaders      string `json:"signed_headers"`
		ExpectedSeed       string `json:"expected_seed_signature"`
		Chunks             []struct {
			Size              int    `json:"size"`
			Byte              string `json:"byte"`
			ExpectedSignature string `json:"expected_signature"`
		} `json:"chunks"`
		Trailer struct {
			Headers           [][2]string `json:"headers"`
			ExpectedSignature string      `json:"expected_signature"`
		} `json:"trailer"`
	} `json:"streaming"`
}

func loadS3Examples(t testing.TB) s3Examples {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "testdata", "sigv4", "s3-examples.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ex s3Examples
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

func exampleAuthenticator(t testing.TB, ex s3Examples) *Authenticator {
	t.Helper()
	now, err := time.Parse(amzDateLayout, ex.AmzDate)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(config.SigV4{Region: ex.Region, MaxClockSkewSeconds: 900, Credentials: []config.Credential{{
		AccessKey: ex.Credentials.AccessKeyID, SecretKey: ex.Credentials.SecretAccessKey, Subject: "example",
	}}}, Options{Now: func() time.Time { return now.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// streamingWire builds the aws-chunked body of the streaming example.
func streamingWire(ex s3Examples, sigs []string) ([]byte, []byte) {
	var wire, data bytes.Buffer
	for i, c := range ex.Streaming.Chunks {
		chunk := bytes.Repeat([]byte(c.Byte), c.Size)
		fmt.Fprintf(&wire, "%x;chunk-signature=%s\r\n", c.Size, sigs[i])
		wire.Write(chunk)
		wire.WriteString("\r\n")
		data.Write(chunk)
	}
	return wire.Bytes(), data.Bytes()
}

func TestS3Examples(t *testing.T) {
	ex := loadS3Examples(t)
	cred := func(scopeDate string) string {
		return ex.Credentials.AccessKeyID + "/" + scopeDate + "/" + ex.Region + "/s3/aws4_request"
	}
	for _, c := range ex.HeaderAuth {
		build := func(sig string) *http.Request {
			r := &http.Request{Method: c.Method, URL: &url.URL{Path: c.Path, RawQuery: c.Query}, Host: c.Host, Header: http.Header{}, Body: http.NoBody}
			for k, v := range c.Headers {
				if k != "host" {
					r.Header.Set(k, v)
				}
			}
			if c.Body != "" {
				r.Body = io.NopCloser(strings.NewReader(c.Body))
				r.ContentLength = int64(len(c.Body))
			}
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+cred(ex.AmzDate[:8])+",SignedHeaders="+c.SignedHeaders+",Signature="+sig)
			return r
		}
		t.Run(c.Name, func(t *testing.T) {
			if ok, err := accepts(exampleAuthenticator(t, ex), build(c.ExpectedSignature)); !ok {
				t.Fatalf("refused: %v", err)
			}
			_, err := exampleAuthenticator(t, ex).Authenticate(context.Background(), build(flipHex(c.ExpectedSignature, 10)))
			if !errors.Is(err, s3err.ErrSignatureDoesNotMatch) {
				t.Fatalf("changed signature: %v", err)
			}
			if c.Body != "" {
				r := build(c.ExpectedSignature)
				r.Body = io.NopCloser(strings.NewReader(strings.ToUpper(c.Body)))
				if ok, err := accepts(exampleAuthenticator(t, ex), r); ok || !errors.Is(err, s3err.ErrXAmzContentSHA256Mismatch) {
					t.Fatalf("changed body: %v", err)
				}
			}
		})
	}
	for _, c := range ex.Presigned {
		t.Run(c.Name, func(t *testing.T) {
			u, err := url.Parse(c.URL)
			if err != nil {
				t.Fatal(err)
			}
			r := &http.Request{Method: c.Method, URL: u, Host: u.Host, Header: http.Header{}, Body: http.NoBody}
			if ok, err := accepts(exampleAuthenticator(t, ex), r); !ok {
				t.Fatalf("refused: %v", err)
			}
			r2 := r.Clone(context.Background())
			r2.URL.Path = "/test.txu"
			if _, err := exampleAuthenticator(t, ex).Authenticate(context.Background(), r2); !errors.Is(err, s3err.ErrSignatureDoesNotMatch) {
				t.Fatalf("changed path: %v", err)
			}
		})
	}
	t.Run("streaming", func(t *testing.T) {
		s := ex.Streaming
		var sigs []string
		for _, c := range s.Chunks {
			sigs = append(sigs, c.ExpectedSignature)
		}
		build := func(wire []byte) *http.Request {
			r := &http.Request{Method: s.Method, URL: &url.URL{Path: s.Path}, Host: s.Host, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(wire))}
			for k, v := range s.Headers {
				if k != "host" {
					r.Header.Set(k, v)
				}
			}
			r.ContentLength, _ = strconv.ParseInt(s.Headers["content-length"], 10, 64)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+cred(ex.AmzDate[:8])+",SignedHeaders="+s.SignedHeaders+",Signature="+s.ExpectedSeed)
			return r
		}
		wire, data := streamingWire(ex, sigs)
		if len(wire) != 66824 {
			t.Fatalf("wire length %d", len(wire))
		}
		r := build(wire)
		if _, err := exampleAuthenticator(t, ex).Authenticate(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if r.ContentLength != int64(len(data)) || r.Header.Get("Content-Encoding") != "" {
			t.Fatalf("framing headers left: length %d, encoding %q", r.ContentLength, r.Header.Get("Content-Encoding"))
		}
		got, err := readBody(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("decoded %d bytes, err %v", len(got), err)
		}
		// Each chunk signature changed in turn must fail.
		for i := range sigs {
			bad := append([]string(nil), sigs...)
			bad[i] = flipHex(bad[i], 0)
			wire, _ := streamingWire(ex, bad)
			r := build(wire)
			if _, err := exampleAuthenticator(t, ex).Authenticate(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if _, err := readBody(r); !errors.Is(err, s3err.ErrSignatureDoesNotMatch) {
				t.Fatalf("chunk %d signature changed: %v", i, err)
			}
		}
	})
	t.Run("trailer", func(t *testing.T) {
		s := ex.Streaming
		key := signingKey(ex.Credentials.SecretAccessKey, ex.AmzDate[:8], ex.Region, "s3")
		final := s.Chunks[len(s.Chunks)-1].ExpectedSignature
		for _, sig := range []string{s.Trailer.ExpectedSignature, flipHex(s.Trailer.ExpectedSignature, 5)} {
			var wire bytes.Buffer
			wire.WriteString("0;chunk-signature=" + final + "\r\n")
			for _, h := range s.Trailer.Headers {
				wire.WriteString(h[0] + ":" + h[1] + "\r\n")
			}
			wire.WriteString("x-amz-trailer-signature:" + sig + "\r\n\r\n")
			// Start the chain at the signature preceding the final chunk.
			cr := newChunkedReader(io.NopCloser(&wire), chunkedConfig{
				signed: true, trailer: true, key: key, amzDate: ex.AmzDate,
				scope: ex.AmzDate[:8] + "/" + ex.Region + "/s3/aws4_request",
				seed:  s.Chunks[len(s.Chunks)-2].ExpectedSignature,
			})
			_, err := io.ReadAll(cr)
			if sig == s.Trailer.ExpectedSignature && err != nil {
				t.Fatalf("trailer refused: %v", err)
			}
			if sig != s.Trailer.ExpectedSignature && !errors.Is(err, s3err.ErrSignatureDoesNotMatch) {
				t.Fatalf("changed trailer signature: %v", err)
			}
		}
	})
}
