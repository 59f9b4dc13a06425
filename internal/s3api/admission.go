package s3api

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"

	"github.com/mizuchi-uploadr/mizuchi/internal/s3api/s3err"
)

// RetryAfterSeconds is the Retry-After of admission refusals.
const RetryAfterSeconds = "1"

// ErrAdmission is the answer to a request or connection over an admission
// limit: 503 SlowDown with Retry-After, given before any byte of a body is
// read.
var ErrAdmission = s3err.ErrSlowDown.WithHeader("Retry-After", RetryAfterSeconds)

var errInflightLimit = ErrAdmission.WithMessage("Too many uploads in progress; please retry.")

// Admission bounds the uploads in flight: requests whose body is being
// received or worked on (PutObject, UploadPart, CompleteMultipartUpload),
// each of which holds descriptors (a temp file, a pipe, a connection to
// the store, spool files) for as long as its client takes. Max bounds them
// all, PerClient those of one client address (IPv6: one /64).
type Admission struct {
	max, perClient int

	mu     sync.Mutex
	n      int
	client map[netip.Prefix]int
}

// NewAdmission returns the limiter; max or perClient ≤ 0 means no limit.
func NewAdmission(max, perClient int) *Admission {
	return &Admission{max: max, perClient: perClient, client: map[netip.Prefix]int{}}
}

// ClientKey is what a per-address share counts: the address itself for
// IPv4, its /64 for IPv6 (one host usually holds a whole /64). ok is false
// when ip is not an address.
func ClientKey(ip netip.Addr) (netip.Prefix, bool) {
	if !ip.IsValid() {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// acquire takes a slot for client, or reports false when a limit is
// reached. release must be called exactly once when it returned true.
func (a *Admission) acquire(client string) (release func(), ok bool) {
	addr, _ := netip.ParseAddr(client)
	key, keyed := ClientKey(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.max > 0 && a.n >= a.max {
		return nil, false
	}
	if keyed && a.perClient > 0 && a.client[key] >= a.perClient {
		return nil, false
	}
	a.n++
	if keyed {
		a.client[key]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.n--
			if keyed {
				if a.client[key]--; a.client[key] <= 0 {
					delete(a.client, key)
				}
			}
		})
	}, true
}

// InFlight is the number of uploads holding a slot (for tests).
func (a *Admission) InFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// admitted reports whether op is counted as an upload in flight.
func admitted(op Operation) bool {
	return op == OpPutObject || op == OpUploadPart || op == OpCompleteMultipartUpload
}

func noRelease() {}

// admit takes an upload slot for the request before authentication and
// before any byte of its body is read; the caller releases it when the
// request is over, whichever way it ends.
func (h *Handler) admit(s *Scope, op Operation) (release func(), err error) {
	if h.admission == nil || !admitted(op) {
		return noRelease, nil
	}
	release, ok := h.admission.acquire(s.ClientIP)
	if !ok {
		if h.metrics != nil {
			h.metrics.LimitRefusals.WithLabelValues(s.bucketName(), "inflight_uploads").Inc()
		}
		return nil, errInflightLimit
	}
	return release, nil
}

// descriptorsExhausted turns a server error caused by running out of file
// descriptors (EMFILE, ENFILE: a temp file, a pipe or a connection to the
// store could not be opened) into SlowDown: the client should retry
// later, nothing is wrong with its request. The cause is kept for the log.
func descriptorsExhausted(err error) error {
	if err == nil || (!errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE)) {
		return err
	}
	if e := s3err.As(err); e.Status < 500 {
		return err
	}
	return ErrAdmission.WithMessage("The server is busy; please retry.").WithCause(err)
}
