package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// streamBody wraps a client's body on its way to the store. It tells a
// client read failure (disconnect, short body, a digest mismatch found by
// the handler's verifying reader) apart from a store failure, and lets a
// watchdog notice a store that stopped reading: time spent waiting on the
// client does not count, only time the transport does not ask for more.
type streamBody struct {
	r      io.Reader
	size   int64
	n      atomic.Int64
	err    error
	inRead atomic.Bool
	last   atomic.Int64 // unix nanos when the last Read returned
}

func newStreamBody(r io.Reader, size int64) *streamBody {
	b := &streamBody{r: r, size: size}
	b.last.Store(time.Now().UnixNano())
	return b
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.inRead.Store(true)
	n, err := b.r.Read(p)
	b.last.Store(time.Now().UnixNano())
	b.inRead.Store(false)
	got := b.n.Add(int64(n))
	if err == io.EOF && got < b.size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.err = err
		return n, &clientBodyError{err: err}
	}
	return n, err
}

// clientErr returns the client-side failure seen while reading, if any.
func (b *streamBody) clientErr() error {
	if b.err == nil {
		return nil
	}
	return &clientBodyError{err: b.err}
}

var errStalled = errors.New("storage backend stopped accepting the body")

// watch cancels the returned context when the store has not read from b
// for stall (while b was not itself waiting on the client) before the
// whole request was written. stop must be called when the request is
// over.
func (b *streamBody) watch(ctx context.Context, stall time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	if stall <= 0 {
		return ctx, func() { cancel(nil) }
	}
	// Having read the whole body is not enough: its last bytes may still
	// sit in the transport, blocked on a store that stopped reading, and
	// ResponseHeaderTimeout only starts once the request is written.
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(stall / 4)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				// Waiting on the client, or the request written and the
				// response pending (ResponseHeaderTimeout's job).
				if b.inRead.Load() || wrote.Load() {
					continue
				}
				if now.Sub(time.Unix(0, b.last.Load())) > stall {
					cancel(fmt.Errorf("%w for %v", errStalled, stall))
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}
