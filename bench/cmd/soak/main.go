package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

type sizeFlag int64

func (s *sizeFlag) String() string { return config.Size(*s).String() }

func (s *sizeFlag) Set(v string) error {
	n, err := config.ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

type options struct {
	url         string
	metrics     string
	concurrency int
	duration    time.Duration
	maxRequests int
	min, max    sizeFlag
	settle      time.Duration
	verify      bool
	seed        uint64
}

func main() {
	o := options{min: 4 << 10, max: 8 << 20}
	flag.StringVar(&o.url, "url", "", "bucket endpoint: objects go to URL/soak/...")
	flag.StringVar(&o.metrics, "metrics", "", "Mizuchi's /metrics URL (goroutines, fds, RSS)")
	flag.IntVar(&o.concurrency, "concurrency", 32, "concurrent uploaders")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to upload")
	flag.IntVar(&o.maxRequests, "max-requests", 200000, "upper bound on requests")
	flag.Var(&o.min, "min", "smallest object")
	flag.Var(&o.max, "max", "largest object")
	flag.DurationVar(&o.settle, "settle", 120*time.Second, "how long to wait for goroutines and fds to return to the baseline")
	flag.BoolVar(&o.verify, "verify", true, "check that every ETag is the MD5 of the body")
	flag.Uint64Var(&o.seed, "seed", 1, "size sequence seed")
	flag.Parse()
	if o.url == "" || o.concurrency < 1 || o.duration <= 0 || o.min < 1 || o.max < o.min || o.max > 1<<30 {
		fmt.Fprintln(os.Stderr, "soak: need -url, -concurrency ≥ 1, -duration > 0, 0 < -min ≤ -max ≤ 1GiB")
		os.Exit(2)
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// sample is one scrape of the process metrics that matter here.
type sample struct {
	goroutines, fds, rss float64
}

func scrape(c *http.Client, url string) (sample, error) {
	resp, err := c.Get(url)
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return sample{}, err
	}
	var s sample
	found := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "go_goroutines":
			dst = &s.goroutines
		case "process_open_fds":
			dst = &s.fds
		case "process_resident_memory_bytes":
			dst = &s.rss
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
			return sample{}, fmt.Errorf("%s: %w", name, err)
		}
		found++
	}
	if found != 3 {
		return sample{}, errors.New("go_goroutines, process_open_fds or process_resident_memory_bytes missing")
	}
	return s, nil
}

type result struct {
	size    int64
	latency time.Duration
	err     error
}

func run(o options) (bool, error) {
	mc := &http.Client{Timeout: 5 * time.Second}
	var base sample
	if o.metrics != "" {
		var err error
		if base, err = scrape(mc, o.metrics); err != nil {
			return false, fmt.Errorf("baseline: %w", err)
		}
		fmt.Printf("baseline: goroutines %.0f, open fds %.0f, RSS %.1f MiB\n", base.goroutines, base.fds, base.rss/(1<<20))
	}

	pool := make([]byte, 2*int(o.max))
	if _, err := rand.Read(pool); err != nil {
		return false, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: o.concurrency, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}

	// Peak of the process metrics while the load runs.
	peak := base
	stopScrape := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		if o.metrics == "" {
			return
		}
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopScrape:
				return
			case <-t.C:
				if s, err := scrape(mc, o.metrics); err == nil {
					peak.goroutines = max(peak.goroutines, s.goroutines)
					peak.fds = max(peak.fds, s.fds)
					peak.rss = max(peak.rss, s.rss)
				}
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	results := make(chan result, 1024)
	var wg sync.WaitGroup
	tickets := make(chan int, o.maxRequests)
	for i := range o.maxRequests {
		tickets <- i
	}
	close(tickets)
	lmin, lmax := math.Log(float64(o.min)), math.Log(float64(o.max))
	start := time.Now()
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(o.seed, uint64(w)))
			for i := range tickets {
				if ctx.Err() != nil {
					return
				}
				size := int64(math.Exp(lmin + rng.Float64()*(lmax-lmin)))
				size = min(max(size, int64(o.min)), int64(o.max))
				off := rng.Int64N(int64(len(pool)) - size + 1)
				body := pool[off : off+size]
				t0 := time.Now()
				err := put(ctx, client, fmt.Sprintf("%s/soak/w%03d/%07d", o.url, w, i), body, o.verify)
				if err != nil && ctx.Err() != nil {
					return // cut off by the end of the run, not a failure
				}
				results <- result{size: size, latency: time.Since(t0), err: err}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	var lat []time.Duration
	var bytesSent int64
	var errs []error
	for r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		lat = append(lat, r.latency)
		bytesSent += r.size
	}
	elapsed := time.Since(start)
	close(stopScrape)
	<-scraped

	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	fmt.Printf("load: %d uploaders, %s, sizes %s..%s log-uniform, verify ETag=%v\n",
		o.concurrency, elapsed.Round(time.Millisecond), config.Size(o.min), config.Size(o.max), o.verify)
	fmt.Printf("requests: %d ok, %d errors; %.1f req/s, %.1f MiB/s (%.2f GiB)\n", len(lat), len(errs),
		float64(len(lat))/elapsed.Seconds(), float64(bytesSent)/(1<<20)/elapsed.Seconds(), float64(bytesSent)/(1<<30))
	fmt.Printf("latency: p50 %s, p90 %s, p99 %s, max %s\n", pct(0.50).Round(time.Millisecond),
		pct(0.90).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	for i, err := range errs {
		if i == 5 {
			fmt.Printf("  … %d more errors\n", len(errs)-5)
			break
		}
		fmt.Println("  error:", err)
	}
	ok := len(errs) == 0 && len(lat) > 0
	if o.metrics == "" {
		return ok, nil
	}
	fmt.Printf("peak during load: goroutines %.0f, open fds %.0f, RSS %.1f MiB (sampled every 0.5 s)\n",
		peak.goroutines, peak.fds, peak.rss/(1<<20))

	// Our idle keep-alive connections hold server goroutines and fds;
	// close them, then wait for Mizuchi's own idle pool to the store to
	// drain (its idle timeout) and compare with the baseline.
	tr.CloseIdleConnections()
	settleStart := time.Now()
	var after sample
	for {
		s, err := scrape(mc, o.metrics)
		if err != nil {
			return false, fmt.Errorf("after: %w", err)
		}
		after = s
		if after.goroutines <= base.goroutines && after.fds <= base.fds {
			break
		}
		if time.Since(settleStart) > o.settle {
			break
		}
		time.Sleep(time.Second)
	}
	back := after.goroutines <= base.goroutines && after.fds <= base.fds
	fmt.Printf("after: goroutines %.0f (baseline %.0f), open fds %.0f (baseline %.0f), RSS %.1f MiB; back to baseline: %v after %s\n",
		after.goroutines, base.goroutines, after.fds, base.fds, after.rss/(1<<20), back, time.Since(settleStart).Round(time.Second))
	return ok && back, nil
}

func put(ctx context.Context, c *http.Client, url string, body []byte, verify bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%d bytes: %s: %s", len(body), resp.Status, bytes.TrimSpace(msg))
	}
	if verify {
		sum := md5.Sum(body)
		if got, want := strings.Trim(resp.Header.Get("ETag"), `"`), hex.EncodeToString(sum[:]); got != want {
			return fmt.Errorf("%d bytes: ETag %q, want %q", len(body), got, want)
		}
	}
	return nil
}
