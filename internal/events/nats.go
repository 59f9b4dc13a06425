package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// natsSink publishes each event on a subject, to JetStream (acknowledged,
// de-duplicated on Nats-Msg-Id) or core NATS (flushed to the server).
type natsSink struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	timeout time.Duration
}

func newNATS(c config.EventSink) (*natsSink, error) {
	timeout := time.Duration(c.TimeoutSeconds) * time.Second
	opts := []nats.Option{
		nats.Name("mizuchi-events"),
		nats.Timeout(timeout),
		// Connect in the background when the server is down at start,
		// and keep reconnecting: events wait in the outbox meanwhile.
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// No client-side buffering while disconnected: a publish then
		// fails and the event stays in the outbox.
		nats.ReconnectBufSize(-1),
	}
	switch {
	case c.CredentialsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredentialsFile))
	case c.Username != "":
		opts = append(opts, nats.UserInfo(c.Username, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	s := &natsSink{nc: nc, subject: c.Subject, timeout: timeout}
	if c.JetStream {
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("nats: jetstream: %w", err)
		}
		s.js = js
	}
	return s, nil
}

var errNATSDisconnected = errors.New("nats: not connected")

// Deliver publishes one message; with JetStream, only the stream's
// acknowledgement counts.
func (s *natsSink) Deliver(ctx context.Context, d Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if !s.nc.IsConnected() {
		return errNATSDisconnected
	}
	msg := nats.NewMsg(strings.ReplaceAll(s.subject, "{bucket}", d.Bucket))
	msg.Data = d.Body
	msg.Header.Set("Content-Type", "application/json")
	msg.Header.Set(jetstream.MsgIDHeader, d.ID)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(msg.Header))
	if s.js != nil {
		if _, err := s.js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("nats: jetstream publish: %w", err)
		}
		return nil
	}
	if err := s.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("nats: publish: %w", err)
	}
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("nats: flush: %w", err)
	}
	return nil
}

func (s *natsSink) Close() error {
	s.nc.Close()
	return nil
}

// newSink builds the sink a configuration names.
func newSink(_ string, _ int, c config.EventSink) (Sink, error) {
	switch c.Type {
	case "webhook":
		return newWebhook(c), nil
	case "nats":
		return newNATS(c)
	}
	return nil, fmt.Errorf("unknown sink type %q", c.Type)
}
