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

// outbox is the durable store of undelivered events. Writes are fsync'd
// (bbolt commits), and concurrent writers share commits (Batch).
type outbox struct {
	db *bolt.DB
}

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
	return &outbox{db: db}, nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// put stores entries durably and returns their sequence numbers.
func (o *outbox) put(entries []entry) ([]uint64, error) {
	vals := make([][]byte, len(entries))
	for i := range entries {
		v, err := json.Marshal(&entries[i])
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	var seqs []uint64
	err := o.db.Batch(func(tx *bolt.Tx) error {
		seqs = seqs[:0]
		b := tx.Bucket(pendingBucket)
		for _, v := range vals {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return seqs, nil
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
// dropped).
func (o *outbox) remove(seq uint64) error {
	return o.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(pendingBucket).Delete(seqKey(seq))
	})
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

func (o *outbox) close() error { return o.db.Close() }
