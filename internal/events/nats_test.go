package events

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/natsserver"
)

// Core NATS (no JetStream): the message reaches a subscriber with its id,
// and a server that is gone makes the delivery fail, not vanish.
func TestNATSCorePublish(t *testing.T) {
	srv := natsserver.Start(t)
	sub, err := srv.Connect(t).SubscribeSync("up.>")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newNATS(config.EventSink{URL: srv.URL, Subject: "up.{bucket}", TimeoutSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for deadline := time.Now().Add(10 * time.Second); !s.nc.IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never connected")
		}
	}
	if err := s.Deliver(context.Background(), Delivery{ID: "e1", Bucket: "pics", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "up.pics" || msg.Header.Get(nats.MsgIdHdr) != "e1" || string(msg.Data) != `{}` {
		t.Errorf("got %s %v %q", msg.Subject, msg.Header, msg.Data)
	}

	_ = srv.Proc.Cmd.Process.Kill()
	<-srv.Proc.Done()
	for deadline := time.Now().Add(10 * time.Second); s.nc.IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still connected to a dead server")
		}
	}
	if err := s.Deliver(context.Background(), Delivery{ID: "e2", Bucket: "pics", Body: []byte(`{}`)}); err == nil {
		t.Error("delivery to a dead server succeeded")
	}
}

// JetStream without a stream for the subject: no acknowledgement, so the
// delivery fails and is retried later.
func TestNATSJetStreamNeedsAck(t *testing.T) {
	srv := natsserver.Start(t)
	s, err := newNATS(config.EventSink{URL: srv.URL, Subject: "nostream.{bucket}", JetStream: true, TimeoutSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for deadline := time.Now().Add(10 * time.Second); !s.nc.IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never connected")
		}
	}
	if err := s.Deliver(context.Background(), Delivery{ID: "e1", Bucket: "b", Body: []byte(`{}`)}); err == nil {
		t.Fatal("JetStream publish without a stream counted as delivered")
	}
	srv.CreateStream(t, "S", "nostream.>")
	if err := s.Deliver(context.Background(), Delivery{ID: "e1", Bucket: "b", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// Same id again: de-duplicated by the stream.
	if err := s.Deliver(context.Background(), Delivery{ID: "e1", Bucket: "b", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages(t, "S")); n != 1 {
		t.Errorf("stream holds %d messages, want 1 (de-duplicated)", n)
	}
}
