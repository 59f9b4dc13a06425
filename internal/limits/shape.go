package limits

import (
	"context"
	"io"
	"sync"
	"time"
)

// shaper is a byte bucket shared by every body of one party in this
// process: bodies are read no faster than rate together.
type shaper struct {
	key    string
	bucket string
	rate   float64
	burst  float64
	chunk  int

	mu     sync.Mutex
	tokens float64
	at     time.Time
	refs   int
}

// shapers are the live shapers, one per party with a body in flight.
type shapers struct {
	mu sync.Mutex
	m  map[string]*shaper
}

func (ss *shapers) acquire(bucket, key string, rate int64, metrics *Metrics) *shaper {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[key]
	if s == nil || s.rate != float64(rate) {
		// A tenth of a second of data per read keeps each pause short;
		// the bucket holds as much, so a shaped body starts at once.
		chunk := int(min(max(rate/10, 1024), 256<<10))
		s = &shaper{key: key, bucket: bucket, rate: float64(rate), burst: float64(chunk), chunk: chunk, tokens: float64(chunk), at: time.Now()}
		// A changed rate (an override) applies to new bodies; the old
		// shaper lives on with its bodies.
		ss.m[key] = s
		metrics.shapedRate(bucket, float64(rate))
	}
	s.refs++
	return s
}

func (ss *shapers) release(s *shaper, metrics *Metrics) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.refs--
	if s.refs <= 0 {
		if ss.m[s.key] == s {
			delete(ss.m, s.key)
		}
		metrics.shapedRate(s.bucket, -s.rate)
	}
}

// take accounts n bytes and returns how long to pause so that the rate
// holds.
func (s *shaper) take(n int, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = min(s.burst, s.tokens+now.Sub(s.at).Seconds()*s.rate)
	s.at = now
	s.tokens -= float64(n)
	if s.tokens >= 0 {
		return 0
	}
	return time.Duration(-s.tokens / s.rate * float64(time.Second))
}

// Body returns r shaped to the ticket's bandwidth limits (r itself when
// there are none). Reads stop early with ctx's error when ctx ends during
// a pause.
func (t *Ticket) Body(ctx context.Context, r io.Reader) io.Reader {
	if t == nil || len(t.shaped) == 0 {
		return r
	}
	chunk := t.shaped[0].chunk
	for _, s := range t.shaped[1:] {
		chunk = min(chunk, s.chunk)
	}
	return &shapedReader{ctx: ctx, r: r, shapers: t.shaped, chunk: chunk}
}

type shapedReader struct {
	ctx     context.Context
	r       io.Reader
	shapers []*shaper
	chunk   int
}

func (s *shapedReader) Read(p []byte) (int, error) {
	if len(p) > s.chunk {
		p = p[:s.chunk]
	}
	n, err := s.r.Read(p)
	if n > 0 {
		now := time.Now()
		var wait time.Duration
		for _, sh := range s.shapers {
			wait = max(wait, sh.take(n, now))
		}
		if wait > 0 {
			tm := time.NewTimer(wait)
			select {
			case <-tm.C:
			case <-s.ctx.Done():
				tm.Stop()
				return n, s.ctx.Err()
			}
		}
	}
	return n, err
}
