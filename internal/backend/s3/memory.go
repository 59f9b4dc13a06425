package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/semaphore"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// MemoryBudget caps the bytes of parts buffered in memory by all uploads
// of the process. A part that does not fit right now is spooled to an
// unlinked temp file instead; nobody waits for memory.
type MemoryBudget struct {
	sem *semaphore.Weighted
	max int64
}

// NewMemoryBudget returns a budget of max bytes (0: never buffer in
// memory, always spool).
func NewMemoryBudget(max int64) *MemoryBudget {
	if max < 0 {
		max = 0
	}
	return &MemoryBudget{sem: semaphore.NewWeighted(max), max: max}
}

func (m *MemoryBudget) tryAcquire(n int64) bool {
	return n <= m.max && m.sem.TryAcquire(n)
}

func (m *MemoryBudget) release(n int64) { m.sem.Release(n) }

// partBuffer holds one part of an auto-multipart upload so it can be
// sent, and re-sent, independently of the client's stream.
type partBuffer struct {
	mem    []byte
	file   *os.File
	size   int64
	budget *MemoryBudget
}

// fillPart reads exactly n bytes of r into memory if the budget allows,
// else into a temp file in dir that is unlinked at once (nothing is left
// behind even if the process dies).
func fillPart(ctx context.Context, budget *MemoryBudget, dir string, r io.Reader, n int64) (*partBuffer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if budget.tryAcquire(n) {
		b := &partBuffer{mem: make([]byte, n), size: n, budget: budget}
		if _, err := io.ReadFull(r, b.mem); err != nil {
			b.release()
			return nil, readErr(err)
		}
		return b, nil
	}
	f, err := os.CreateTemp(dir, "mizuchi-part-*")
	if err != nil {
		return nil, s3err.ErrInternalError.WithCause(fmt.Errorf("s3 backend: spool part: %w", err))
	}
	_ = os.Remove(f.Name())
	b := &partBuffer{file: f, size: n}
	got, err := io.CopyN(f, r, n)
	if err != nil {
		b.release()
		if got < n && (err == io.EOF || isClientErr(err)) {
			return nil, readErr(err)
		}
		return nil, s3err.ErrInternalError.WithCause(fmt.Errorf("s3 backend: spool part: %w", err))
	}
	return b, nil
}

func readErr(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if isClientErr(err) {
		return err
	}
	return &clientBodyError{err: err}
}

// reader returns the part's bytes from the start.
func (b *partBuffer) reader() (io.Reader, error) {
	if b.file != nil {
		if _, err := b.file.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return b.file, nil
	}
	return bytes.NewReader(b.mem), nil
}

func (b *partBuffer) release() {
	if b.file != nil {
		_ = b.file.Close()
		b.file = nil
	}
	if b.mem != nil {
		b.mem = nil
		b.budget.release(b.size)
	}
}
