package s3api

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// body wraps the client's request body on its way to the backend. It
// counts bytes, measures time spent waiting on the client, never hands out
// more than the declared size, and remembers the first read failure so the
// handler can answer with the client-side cause (IncompleteBody, a digest
// mismatch found by a verifying reader) rather than whatever the backend
// made of it.
type body struct {
	r      io.Reader
	remain int64
	// idle, when positive, is how long one Read may wait for the client;
	// setDeadline moves the connection's read deadline.
	idle        time.Duration
	setDeadline func(time.Time) error

	mu   sync.Mutex
	n    int64
	wait time.Duration
	err  error
}

func newBody(r io.Reader, size int64) *body { return &body{r: r, remain: size} }

// withIdleTimeout makes every Read fail with RequestTimeout when the client
// sends nothing for idle, so a stalled client cannot hold an upload open.
// The deadline is left in place afterwards: net/http sets its own for the
// next request, and after a timeout it must keep the server from waiting
// for the rest of the body before it answers.
func (b *body) withIdleTimeout(idle time.Duration, setDeadline func(time.Time) error) *body {
	b.idle, b.setDeadline = idle, setDeadline
	return b
}

func (b *body) Read(p []byte) (int, error) {
	if b.remain <= 0 {
		// The declared size was delivered; anything after it would be a
		// framing error of the client, and net/http stops at the
		// Content-Length anyway.
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	start := time.Now()
	if b.idle > 0 && b.setDeadline != nil {
		_ = b.setDeadline(start.Add(b.idle))
	}
	n, err := b.r.Read(p)
	d := time.Since(start)
	b.remain -= int64(n)
	b.mu.Lock()
	b.n += int64(n)
	b.wait += d
	if err == io.EOF && b.remain > 0 {
		err = s3err.ErrIncompleteBody
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = clientError(err)
		err = b.err
	}
	b.mu.Unlock()
	return n, err
}

// stats returns bytes read, time waited on the client, and the first read
// failure.
func (b *body) stats() (int64, time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.wait, b.err
}

// clientError maps a failure to read the client's body to an S3 error.
func clientError(err error) error {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return s3err.ErrRequestTimeout.WithCause(err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return s3err.ErrIncompleteBody.WithCause(err)
	}
	return s3err.ErrIncompleteBody.WithCause(err)
}
