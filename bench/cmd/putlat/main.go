// Command putlat measures the latency of small PutObject requests against
// several Mizuchi endpoints, interleaved round by round, and reports
// percentiles per endpoint and their differences to the first (the
// baseline). With -hook it also serves a webhook receiver that answers
// 204 and counts the events it got.
//
//	putlat -target off=http://127.0.0.1:8080/bench -target on=http://127.0.0.1:8081/bench -hook 127.0.0.1:9000
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type targets []struct{ name, url string }

func (t *targets) String() string { return fmt.Sprint(*t) }

func (t *targets) Set(v string) error {
	name, url, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want name=url, got %q", v)
	}
	*t = append(*t, struct{ name, url string }{name, url})
	return nil
}

func main() {
	var ts targets
	flag.Var(&ts, "target", "name=url of a bucket endpoint (repeat; the first is the baseline)")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	n := flag.Int("n", 200, "PUTs per target per round")
	conc := flag.Int("concurrency", 1, "concurrent PUTs")
	size := flag.Int("size", 4096, "object size in bytes")
	hook := flag.String("hook", "", "host:port of a webhook receiver to serve (answers 204)")
	settle := flag.Duration("settle", 10*time.Second, "with -hook: wait this long at most for every event")
	flag.Parse()
	if len(ts) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var hooked atomic.Int64
	if *hook != "" {
		ln, err := net.Listen("tcp", *hook)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				hooked.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
		}()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
	body := bytes.Repeat([]byte("x"), *size)
	lat := make([][]time.Duration, len(ts))
	errs := make([]int64, len(ts))
	seq := 0
	for round := -1; round < *rounds; round++ { // round -1 warms up
		order := make([]int, len(ts))
		for i := range order {
			order[i] = i
		}
		if round%2 != 0 {
			slices.Reverse(order)
		}
		for _, i := range order {
			var mu sync.Mutex
			var wg sync.WaitGroup
			work := make(chan int)
			for range *conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range work {
						start := time.Now()
						err := put(client, fmt.Sprintf("%s/lat/%s/%d", ts[i].url, ts[i].name, k), body)
						d := time.Since(start)
						mu.Lock()
						if err != nil {
							errs[i]++
						} else if round >= 0 {
							lat[i] = append(lat[i], d)
						}
						mu.Unlock()
					}
				}()
			}
			for range *n {
				seq++
				work <- seq
			}
			close(work)
			wg.Wait()
		}
	}
	fmt.Printf("%d rounds × %d PUTs of %d B per target, concurrency %d\n", *rounds, *n, *size, *conc)
	fmt.Printf("%-10s %8s %8s %8s %8s %8s %7s\n", "target", "p50", "p90", "p99", "mean", "Δp50", "errors")
	var base time.Duration
	for i, t := range ts {
		l := lat[i]
		slices.Sort(l)
		p := func(q float64) time.Duration {
			if len(l) == 0 {
				return 0
			}
			return l[min(len(l)-1, int(q*float64(len(l))))]
		}
		var sum time.Duration
		for _, d := range l {
			sum += d
		}
		mean := time.Duration(0)
		if len(l) > 0 {
			mean = sum / time.Duration(len(l))
		}
		if i == 0 {
			base = p(0.5)
		}
		fmt.Printf("%-10s %8s %8s %8s %8s %8s %7d\n", t.name, ms(p(0.5)), ms(p(0.9)), ms(p(0.99)), ms(mean), ms(p(0.5)-base), errs[i])
	}
	if *hook != "" {
		deadline := time.Now().Add(*settle)
		for time.Now().Before(deadline) && hooked.Load() == 0 {
			time.Sleep(100 * time.Millisecond)
		}
		last := int64(-1)
		for time.Now().Before(deadline) && hooked.Load() != last {
			last = hooked.Load()
			time.Sleep(time.Second)
		}
		fmt.Printf("webhook received %d events\n", hooked.Load())
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func put(c *http.Client, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
