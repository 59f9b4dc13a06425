package events

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// pendingBucket holds one record per event and sink, keyed by an
// increasing sequence number.
var pendingBucket = []byte("pending")

// entry is an outbox record: one event for one sink.
type entry struct {
	// Sink identifies the sink: "<bucket>/<index>".
	Sink string `json:"sink"`
	// ID is the event id (Nats-Msg-Id, X-Mizuchi-Event-Id).
	ID string `json:"id"`
	// Created is when the event was recorded (Unix nanoseconds).
	Created int64 `json:"created"`
	// Traceparent links the delivery span to the upload's trace.
	Traceparent string `json:"traceparent,omitempty"`
	// Body is the exact document sent and signed.
	Body json.RawMessage `json:"body"`
}

// outbox is the durable store of undelivered events. Every write is a
// bbolt commit (fsync'd). One goroutine commits: requests that arrive
// while a commit runs are committed together by the next one (group
// commit, no added delay), so concurrent uploads share disk syncs.
type outbox struct {
	db      *bolt.DB
	reqs    chan *writeReq
	quit    chan struct{}
	stopped chan struct{}
}

// writeReq adds values and/or deletes keys; done (nil: nobody waits)
// receives the outcome.
type writeReq struct {
	vals [][]byte
	del  []uint64
	seqs []uint64
	done chan error
}

// errClosed is returned by writes after close.
var errClosed = errors.New("outbox closed")

// maxGroup bounds the requests committed together.
const maxGroup = 1024

func openOutbox(dir string) (*outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("events outbox: %w", err)
	}
	path := filepath.Join(dir, "outbox.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("events outbox %s is locked by another process", path)
		}
		return nil, fmt.Errorf("events outbox %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(pendingBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("events outbox %s: %w", path, err)
	}
	o := &outbox{db: db, reqs: make(chan *writeReq), quit: make(chan struct{}), stopped: make(chan struct{})}
	go o.loop()
	return o, nil
}

func (o *outbox) loop() {
	defer close(o.stopped)
	for {
		var first *writeReq
		select {
		case first = <-o.reqs:
		case <-o.quit:
			return
		}
		group := []*writeReq{first}
	collect:
		for len(group) < maxGroup {
			select {
			case r := <-o.reqs:
				group = append(group, r)
			default:
				break collect
			}
		}
		err := o.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(pendingBucket)
			for _, r := range group {
				r.seqs = r.seqs[:0]
				for _, seq := range r.del {
					if err := b.Delete(seqKey(seq)); err != nil {
						return err
					}
				}
				for _, v := range r.vals {
					seq, err := b.NextSequence()
					if err != nil {
						return err
					}
					if err := b.Put(seqKey(seq), v); err != nil {
						return err
					}
					r.seqs = append(r.seqs, seq)
				}
			}
			return nil
		})
		for _, r := range group {
			if r.done != nil {
				r.done <- err
			}
		}
	}
}

// write hands a request to the committer; wait says whether to wait for
// the commit.
func (o *outbox) write(r *writeReq, wait bool) error {
	if wait {
		r.done = make(chan error, 1)
	}
	select {
	case o.reqs <- r:
	case <-o.quit:
		return errClosed
	}
	if !wait {
		return nil
	}
	return <-r.done
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// put stores entries durably and returns their sequence numbers.
func (o *outbox) put(entries []entry) ([]uint64, error) {
	r := &writeReq{vals: make([][]byte, len(entries))}
	for i := range entries {
		v, err := json.Marshal(&entries[i])
		if err != nil {
			return nil, err
		}
		r.vals[i] = v
	}
	if err := o.write(r, true); err != nil {
		return nil, err
	}
	return r.seqs, nil
}

// get reads an entry; ok is false when it is gone.
func (o *outbox) get(seq uint64) (e entry, ok bool, err error) {
	err = o.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(pendingBucket).Get(seqKey(seq))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &e)
	})
	return e, ok, err
}

// remove deletes an entry once its sink acknowledged it (or it was
// dropped). It does not wait for the commit: if the process dies first,
// the event is delivered again (at least once).
func (o *outbox) remove(seq uint64) error {
	return o.write(&writeReq{del: []uint64{seq}}, false)
}

// scan calls fn for every pending entry in order, without its body.
func (o *outbox) scan(fn func(seq uint64, sink string, created int64)) error {
	return o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(pendingBucket).ForEach(func(k, v []byte) error {
			var head struct {
				Sink    string `json:"sink"`
				Created int64  `json:"created"`
			}
			if err := json.Unmarshal(v, &head); err != nil {
				return fmt.Errorf("outbox record %x: %w", k, err)
			}
			fn(binary.BigEndian.Uint64(k), head.Sink, head.Created)
			return nil
		})
	})
}

// close commits what was handed over and closes the database.
func (o *outbox) close() error {
	select {
	case <-o.quit:
		return nil
	default:
	}
	close(o.quit)
	<-o.stopped
	return o.db.Close()
}
