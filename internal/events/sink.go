package events

import (
	"context"
	"strings"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// Delivery is one event on its way to one sink.
type Delivery struct {
	// ID is the event id, unique per event (the same for every sink).
	ID     string
	Bucket string
	// Body is the exact JSON document.
	Body []byte
}

// Sink delivers events somewhere. Deliver returns nil only when the sink
// acknowledged the event; any error means it is tried again later.
type Sink interface {
	Deliver(ctx context.Context, d Delivery) error
	Close() error
}

// route is a sink of a bucket with its filter.
type route struct {
	// id names the sink in the outbox: "<bucket>/<index>".
	id     string
	bucket string
	// label names it in metrics and logs: "<type>.<index>".
	label string
	typ   string
	// cfg is the sink's configuration: a reload rebuilds the sink when
	// it changed.
	cfg config.EventSink
	// files is a digest of the files the sink read when it was built.
	files  string
	sink   Sink
	names  []string
	prefix string
	suffix string
}

// matches reports whether the sink wants this event.
func (r *route) matches(eventName, key string) bool {
	if !strings.HasPrefix(key, r.prefix) || !strings.HasSuffix(key, r.suffix) {
		return false
	}
	for _, n := range r.names {
		if n == config.EventObjectCreatedAll || n == "s3:"+eventName {
			return true
		}
	}
	return false
}

// bucketOf is the bucket of a sink id "<bucket>/<index>".
func bucketOf(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[:i]
	}
	return id
}
