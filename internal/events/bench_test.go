package events

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// BenchmarkNotify is the time an upload waits for its event to be durable
// (document built, outbox commit with fsync), with 1 and 8 uploads at
// once (concurrent commits are batched). The sink never delivers, so the
// outbox only grows. ns/op is per event: with 8 writers, an upload waits
// about 8 × ns/op.
//
//	go test -run '^$' -bench Notify -benchtime 2000x ./internal/events/
func BenchmarkNotify(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			ev, bs := testConfig(b.TempDir())
			ev.MaxPending = 1 << 30
			m, err := New(ev, bs, Options{Sinks: func(string, int, config.EventSink) (Sink, error) { return newFake(true), nil }})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := m.Notify(object("k")); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
