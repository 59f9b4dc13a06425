package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

type vectorContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	Normalize        bool   `json:"normalize"`
	Region           string `json:"region"`
	Service          string `json:"service"`
	Timestamp        string `json:"timestamp"`
	OmitSessionToken bool   `json:"omit_session_token"`
}

func readVectorFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newVectorAuthenticator verifies generic SigV4 as the suite signs it:
// its service, and the body hash when no x-amz-content-sha256 is sent.
func newVectorAuthenticator(t testing.TB, vc vectorContext) *Authenticator {
	t.Helper()
	now, err := time.Parse(time.RFC3339, vc.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(config.SigV4{
		Region: vc.Region, MaxClockSkewSeconds: 900,
		Credentials: []config.Credential{{
			AccessKey: vc.Credentials.AccessKeyID, SecretKey: vc.Credentials.SecretAccessKey,
			SessionToken: vc.Credentials.Token, Subject: "vector",
		}},
	}, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a.service = vc.Service
	a.genericPayload = func(r *http.Request) string {
		b, _ := readBody(r)
		sum := sha256.Sum256(b)
		r.Body = http.NoBody
		if len(b) > 0 {
			r.Body = nopCloser{strings.NewReader(string(b))}
		}
		return hex.EncodeToString(sum[:])
	}
	return a
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// normalizePath is the generic SigV4 path normalisation S3 does not use:
// dot segments removed, empty segments collapsed.
func normalizePath(p string) string {
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	n := "/" + strings.Join(out, "/")
	if strings.HasSuffix(p, "/") && n != "/" {
		n += "/"
	}
	return n
}

// accepts authenticates r and reads its body; it reports whether both
// succeeded.
func accepts(a *Authenticator, r *http.Request) (bool, error) {
	if _, err := a.Authenticate(context.Background(), r); err != nil {
		return false, err
	}
	if _, err := readBody(r); err != nil {
		return false, err
	}
	return true, nil
}

func TestVectors(t *testing.T) {
	root := filepath.Join(sharedDir(t), "testdata", "sigv4", "aws-c-auth-v4")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cases++
		dir := filepath.Join(root, e.Name())
		for _, form := range []string{"header", "query"} {
			t.Run(e.Name()+"/"+form, func(t *testing.T) {
				var vc vectorContext
				if err := json.Unmarshal([]byte(readVectorFile(t, dir, "context.json")), &vc); err != nil {
					t.Fatal(err)
				}
				signed := readVectorFile(t, dir, form+"-signed-request.txt")
				wantCanon := readVectorFile(t, dir, form+"-canonical-request.txt")
				wantSTS := readVectorFile(t, dir, form+"-string-to-sign.txt")
				wantSig := strings.TrimSpace(readVectorFile(t, dir, form+"-signature.txt"))
				r, err := parseRawRequest(signed)
				if err != nil {
					t.Fatal(err)
				}
				a := newVectorAuthenticator(t, vc)

				// Reproduce the canonical request, string to sign and
				// signature with the package's own functions.
				var in *sigInput
				var perr *s3err.Error
				skip := ""
				if form == "header" {
					in, perr = parseAuthorization(r.Header.Get("Authorization"))
				} else {
					in, perr = parsePresigned(parseQuery(r.URL.RawQuery))
					skip = qSignature
				}
				if perr != nil {
					t.Fatal(perr)
				}
				body, _ := readBody(r)
				sum := sha256.Sum256(body)
				payload := hex.EncodeToString(sum[:])
				query := parseQuery(r.URL.RawQuery)
				if vc.OmitSessionToken && form == "query" {
					// The suite's signer attached the token after signing.
					var kept []queryPair
					for _, q := range query {
						if q.key != qSecurityToken {
							kept = append(kept, q)
						}
					}
					query = kept
				}
				uri := canonicalURI(r.URL.EscapedPath())
				s3Canon := canonicalRequest(r, uri, canonicalQuery(query, skip), in.signedHeaders, in.signedRaw, payload)
				genericCanon := s3Canon
				normalizes := vc.Normalize && normalizePath(r.URL.Path) != r.URL.Path
				if normalizes {
					genericCanon = canonicalRequest(r, canonicalURI((&url.URL{Path: normalizePath(r.URL.Path)}).EscapedPath()), canonicalQuery(query, skip), in.signedHeaders, in.signedRaw, payload)
				}
				if genericCanon != wantCanon {
					t.Fatalf("canonical request:\n%s\nwant:\n%s", genericCanon, wantCanon)
				}
				amzDate := strings.Split(wantSTS, "\n")[1]
				sts := stringToSign(amzDate, in.scope(), genericCanon)
				if sts != wantSTS {
					t.Fatalf("string to sign:\n%s\nwant:\n%s", sts, wantSTS)
				}
				key := signingKey(vc.Credentials.SecretAccessKey, in.scopeDate, in.region, in.service)
				if got := signHex(key, sts); got != wantSig {
					t.Fatalf("signature %s, want %s", got, wantSig)
				}

				// Then the full verifier, with S3's rules.
				r, _ = parseRawRequest(signed)
				ok, err := accepts(a, r)
				switch {
				case normalizes:
					// Signed over a normalised path: S3 does not normalise.
					if ok || !errors.Is(err, s3err.ErrSignatureDoesNotMatch) {
						t.Fatalf("normalised-path signature accepted under S3 rules: %v", err)
					}
					return
				case vc.OmitSessionToken:
					// The token was added after signing: S3 refuses an
					// unsigned token.
					if ok {
						t.Fatal("unsigned session token accepted")
					}
					return
				case !ok:
					t.Fatalf("refused: %v", err)
				}

				// Every single-byte change of the signed request must fail.
				firstLineEnd := strings.IndexByte(signed, '\n')
				proto := strings.LastIndexByte(signed[:firstLineEnd], ' ')
				headEnd := strings.Index(signed, "\n\n")
				for i := 0; i < len(signed); i++ {
					if i >= proto && i < firstLineEnd {
						continue // the protocol version is not signed
					}
					if headEnd >= 0 && i >= headEnd && i < headEnd+2 {
						continue // the line ends framing the header section
					}
					b := []byte(signed)
					b[i] ^= 0x01
					r, err := parseRawRequest(string(b))
					if err != nil {
						continue
					}
					a := newVectorAuthenticator(t, vc)
					if ok, _ := accepts(a, r); ok {
						t.Errorf("byte %d changed (%q→%q) still accepted", i, signed[i], b[i])
					}
				}
			})
		}
	}
	if cases < 30 {
		t.Fatalf("only %d vector cases found", cases)
	}
}
