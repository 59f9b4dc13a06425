package telemetry

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// queueOptions configures queueProcessor.
type queueOptions struct {
	QueueSize int
	BatchSize int
	Delay     time.Duration
	// OnDrop is called with the number of spans dropped because the queue
	// was full or shutdown gave up on them.
	OnDrop func(n int)
}

// queueProcessor is a batching span processor with a bounded queue that
// never blocks the goroutine ending a span: when the queue is full the span
// is dropped and counted. The SDK's batch processor drops too but only
// reports drops through the global meter provider, so it cannot feed an
// injected Prometheus registry.
//
// One goroutine exports; while the collector is slow the queue fills and
// later spans are dropped, which is the intended trade: requests never wait
// for telemetry.
type queueProcessor struct {
	exp   sdktrace.SpanExporter
	opts  queueOptions
	queue chan sdktrace.ReadOnlySpan
	flush chan chan struct{}
	stop  chan struct{}
	done  chan struct{}

	stopOnce sync.Once
	stopped  atomic.Bool
	// exportCtx is cancelled when Shutdown runs out of time, so a blocked
	// export is abandoned.
	exportCtx    context.Context
	cancelExport context.CancelFunc
}

func newQueueProcessor(exp sdktrace.SpanExporter, opts queueOptions) *queueProcessor {
	if opts.BatchSize > opts.QueueSize {
		opts.BatchSize = opts.QueueSize
	}
	if opts.OnDrop == nil {
		opts.OnDrop = func(int) {}
	}
	p := &queueProcessor{
		exp:   exp,
		opts:  opts,
		queue: make(chan sdktrace.ReadOnlySpan, opts.QueueSize),
		flush: make(chan chan struct{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	p.exportCtx, p.cancelExport = context.WithCancel(context.Background())
	go p.run()
	return p
}

// OnStart does nothing: spans are queued when they end.
func (p *queueProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span, or drops and counts it when the queue is full.
func (p *queueProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() || p.stopped.Load() {
		return
	}
	select {
	case p.queue <- s:
	default:
		p.opts.OnDrop(1)
	}
}

func (p *queueProcessor) run() {
	defer close(p.done)
	timer := time.NewTimer(p.opts.Delay)
	defer timer.Stop()
	batch := make([]sdktrace.ReadOnlySpan, 0, p.opts.BatchSize)
	export := func() {
		if len(batch) > 0 {
			// Errors are counted and logged by the exporter.
			_ = p.exp.ExportSpans(p.exportCtx, batch)
			clear(batch)
			batch = batch[:0]
		}
		timer.Reset(p.opts.Delay)
	}
	drain := func() {
		for {
			select {
			case s := <-p.queue:
				batch = append(batch, s)
				if len(batch) >= p.opts.BatchSize {
					export()
				}
			default:
				export()
				return
			}
		}
	}
	for {
		select {
		case s := <-p.queue:
			batch = append(batch, s)
			if len(batch) >= p.opts.BatchSize {
				export()
			}
		case <-timer.C:
			export()
		case ack := <-p.flush:
			drain()
			close(ack)
		case <-p.stop:
			drain()
			return
		}
	}
}

// ForceFlush exports everything queued so far, waiting at most until ctx ends.
func (p *queueProcessor) ForceFlush(ctx context.Context) error {
	if p.stopped.Load() {
		return nil
	}
	ack := make(chan struct{})
	select {
	case p.flush <- ack:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued and stops the exporter, giving up when
// ctx ends; abandoned spans are counted as dropped.
func (p *queueProcessor) Shutdown(ctx context.Context) error {
	var err error
	p.stopOnce.Do(func() {
		p.stopped.Store(true)
		close(p.stop)
		select {
		case <-p.done:
		case <-ctx.Done():
			p.cancelExport()
			<-p.done
			err = ctx.Err()
		}
		if n := len(p.queue); n > 0 {
			p.opts.OnDrop(n)
		}
		if e := p.exp.Shutdown(ctx); err == nil {
			err = e
		}
		p.cancelExport()
	})
	return err
}

var _ sdktrace.SpanProcessor = (*queueProcessor)(nil)
