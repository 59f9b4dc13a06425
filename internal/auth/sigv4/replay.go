package sigv4

import (
	"encoding/hex"
	"sync"
	"time"
)

// replayCache remembers header signatures until the skew window in which
// they could be accepted has passed. Capacity is fixed: when it is full of
// unexpired entries new requests are refused rather than old entries
// forgotten, so a replay is never accepted because of memory pressure.
type replayCache struct {
	mu    sync.Mutex
	cap   int
	seen  map[[32]byte]struct{}
	queue []replayEntry // FIFO; expiries are nearly monotonic
	head  int
}

type replayEntry struct {
	sig     [32]byte
	expires time.Time
}

func newReplayCache(capacity int) *replayCache {
	return &replayCache{cap: capacity, seen: make(map[[32]byte]struct{}, min(capacity, 1024))}
}

// add records sig. It reports a replay, or full when the cache holds
// cap unexpired entries and cannot take sig.
func (c *replayCache) add(sigHex string, expires, now time.Time) (replay, full bool) {
	var k [32]byte
	if _, err := hex.Decode(k[:], []byte(sigHex)); err != nil {
		return true, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, dup := c.seen[k]; dup {
		return true, false
	}
	if len(c.seen) >= c.cap {
		return false, true
	}
	c.seen[k] = struct{}{}
	c.queue = append(c.queue, replayEntry{k, expires})
	return false, false
}

// expire drops entries from the front of the queue whose window has
// passed. Entries are added with expires = request time + skew, so the
// queue is ordered up to the spread of accepted request times; an entry
// stuck behind a later one is dropped a little late, never early.
func (c *replayCache) expire(now time.Time) {
	for c.head < len(c.queue) && now.After(c.queue[c.head].expires) {
		delete(c.seen, c.queue[c.head].sig)
		c.queue[c.head] = replayEntry{}
		c.head++
	}
	if c.head > 0 && c.head >= len(c.queue)/2 {
		n := copy(c.queue, c.queue[c.head:])
		c.queue = c.queue[:n]
		c.head = 0
	}
}
