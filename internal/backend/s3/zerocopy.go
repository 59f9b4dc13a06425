package s3

import (
	"context"
	"net/http"
	"os"
)

// The SDK wraps every request body (smithy-go's Request.Build puts it in
// a safe read-closer), which hides an *os.File from net/http: the body is
// then copied through a user-space buffer. net/http itself, given an
// *os.File (or io.NopCloser of one) with an exact ContentLength on a
// plain TCP connection, ends in (*net.TCPConn).ReadFrom → sendfile(2).
// So for spooled parts the HTTP client handed to the SDK puts the file
// back as the body once the SDK has built and signed the request.
// (Measured: io.NopCloser(file) is not enough, net/http's rewind wrapper
// hides it again; only a bare *os.File reaches sendfile.) The
// signature does not cover the body (UNSIGNED-PAYLOAD), so nothing else
// changes on the wire; TestSpooledPartsUseSendfile proves the syscall.

type fileBodyKey struct{}

// fileBody is a spooled part offered for zero-copy sending.
type fileBody struct {
	f    *os.File
	size int64
	// sent reports that the last attempt went out as the file itself.
	sent bool
}

func withFileBody(ctx context.Context, fb *fileBody) context.Context {
	return context.WithValue(ctx, fileBodyKey{}, fb)
}

// httpClient is the SDK's HTTP client: one shared transport, no
// redirects, and the file-body substitution above.
type httpClient struct {
	client   *http.Client
	zeroCopy bool
}

func newHTTPClient(rt http.RoundTripper, zeroCopy bool) *httpClient {
	return &httpClient{
		client: &http.Client{
			Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		zeroCopy: zeroCopy,
	}
}

// Do sends req, substituting a spooled part's file for the SDK's wrapped
// body when zero-copy is on and the request is plain HTTP.
func (h *httpClient) Do(req *http.Request) (*http.Response, error) {
	if fb, ok := req.Context().Value(fileBodyKey{}).(*fileBody); ok {
		fb.sent = false
		if h.zeroCopy && req.URL.Scheme == "http" && req.Body != nil && req.ContentLength == fb.size {
			// net/http unwraps exactly one layer (its own rewind
			// tracker) before handing the body to the connection, so the
			// body must be the *os.File itself; the transport closes it,
			// hence an independent open of the same file per attempt.
			if f, err := reopen(fb.f); err == nil {
				req.Body = f
				req.GetBody = nil
				fb.sent = true
			}
		}
	}
	return h.client.Do(req)
}
