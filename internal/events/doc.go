// Package events tells applications that an object has landed: for every
// object stored it builds an S3 event notification document, writes it to
// a durable outbox before the client is answered, and delivers it to the
// bucket's sinks (webhooks, NATS) until each one acknowledged it.
//
// The outbox is a bbolt database: one record per event and sink, deleted
// when that sink acknowledged. A worker per sink delivers in order and, when
// a delivery fails, moves the event to the back of its queue and waits
// with capped exponential backoff and jitter. Pending records survive a
// crash and are delivered after the restart: delivery is at least once,
// and consumers de-duplicate on the event id.
package events
