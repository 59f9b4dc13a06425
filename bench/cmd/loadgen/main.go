package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// target is one endpoint under test: uploads go to URL + "/" + key.
type target struct {
	name, url string
}

type targets []target

func (ts *targets) String() string { return fmt.Sprint(*ts) }

func (ts *targets) Set(v string) error {
	name, url, ok := strings.Cut(v, "=")
	if !ok || name == "" || url == "" {
		return fmt.Errorf("want name=url, got %q", v)
	}
	*ts = append(*ts, target{name: name, url: strings.TrimSuffix(url, "/")})
	return nil
}

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

// watch names processes whose CPU time is measured around each phase.
type watch map[string]int

func (w watch) String() string { return fmt.Sprint(map[string]int(w)) }

func (w watch) Set(v string) error {
	name, pid, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(pid)
	if !ok || name == "" || err != nil {
		return fmt.Errorf("want name=pid, got %q", v)
	}
	w[name] = n
	return nil
}

// cpuTimes reads the user+system CPU time of each watched process.
func (w watch) cpuTimes() (map[string]time.Duration, error) {
	out := make(map[string]time.Duration, len(w))
	for name, pid := range w {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, err
		}
		// Fields after the command (which may hold spaces): state is
		// field 3, utime 14 and stime 15.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return nil, fmt.Errorf("/proc/%d/stat: too short", pid)
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		out[name] = time.Duration(u+k) * time.Second / clockTicks
	}
	return out, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

type options struct {
	targets     targets
	watch       watch
	rounds      int
	warmup      int
	big         sizeFlag
	bigCount    int
	small       sizeFlag
	concurrency int
	duration    time.Duration
}

func main() {
	o := options{big: 256 << 20, small: 4 << 10, watch: watch{}}
	flag.Var(&o.targets, "target", "name=url of a bucket endpoint (repeat; the first is the baseline)")
	flag.Var(o.watch, "cpu", "name=pid of a process whose CPU time to report per small PUT (repeat)")
	flag.IntVar(&o.rounds, "rounds", 5, "interleaved rounds")
	flag.IntVar(&o.warmup, "warmup", 1, "rounds run first and not counted (connections, allocations, page cache)")
	flag.Var(&o.big, "big", "size of each big PUT (0: skip)")
	flag.IntVar(&o.bigCount, "big-count", 2, "big PUTs per target per round")
	flag.Var(&o.small, "small", "size of each small PUT")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent small PUTs")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "small-PUT phase length per target per round (0: skip)")
	flag.StringVar(&sign.accessKey, "access-key", "", "sign every PUT with SigV4 with this access key (and -secret-key)")
	flag.StringVar(&sign.secretKey, "secret-key", "", "SigV4 secret key")
	flag.StringVar(&sign.region, "region", "us-east-1", "SigV4 region")
	flag.Parse()
	if len(o.targets) == 0 || o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: at least one -target and one round are required")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: o.concurrency + 1,
		DisableCompression:  true,
	}}
	pattern := make([]byte, 1<<20)
	if _, err := rand.Read(pattern); err != nil {
		return err
	}
	bigMiBs := make(map[string][]float64)
	smallRate := make(map[string][]float64)
	// smallCPU[target][process] is the CPU time of process during the
	// small-PUT phases of target; smallN[target] counts those PUTs.
	smallCPU := make(map[string]map[string]time.Duration)
	smallN := make(map[string]int64)
	bigCPU := make(map[string]map[string]time.Duration)
	bigBytes := make(map[string]int64)
	for range o.warmup {
		for _, t := range o.targets {
			if o.big > 0 {
				if _, err := bigPut(client, t, pattern, int64(o.big), "big-0"); err != nil {
					return fmt.Errorf("%s: warm-up: %w", t.name, err)
				}
			}
			if o.duration > 0 {
				if _, _, err := smallPuts(client, t, pattern[:o.small], o.concurrency, min(o.duration, time.Second)); err != nil {
					return fmt.Errorf("%s: warm-up: %w", t.name, err)
				}
			}
		}
	}
	for round := range o.rounds {
		// Alternate the order so neither target always goes first.
		order := slices.Clone(o.targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		if o.big > 0 {
			for _, t := range order {
				for i := range o.bigCount {
					before, err := o.watch.cpuTimes()
					if err != nil {
						return err
					}
					mibs, err := bigPut(client, t, pattern, int64(o.big), fmt.Sprintf("big-%d", i))
					if err != nil {
						return fmt.Errorf("%s: big PUT: %w", t.name, err)
					}
					after, err := o.watch.cpuTimes()
					if err != nil {
						return err
					}
					if bigCPU[t.name] == nil {
						bigCPU[t.name] = make(map[string]time.Duration)
					}
					for p := range after {
						bigCPU[t.name][p] += after[p] - before[p]
					}
					bigBytes[t.name] += int64(o.big)
					bigMiBs[t.name] = append(bigMiBs[t.name], mibs)
					fmt.Printf("round %d  %-8s big   %8.1f MiB/s\n", round+1, t.name, mibs)
				}
			}
		}
		if o.duration > 0 {
			for _, t := range order {
				before, err := o.watch.cpuTimes()
				if err != nil {
					return err
				}
				rate, n, err := smallPuts(client, t, pattern[:o.small], o.concurrency, o.duration)
				if err != nil {
					return fmt.Errorf("%s: small PUTs: %w", t.name, err)
				}
				after, err := o.watch.cpuTimes()
				if err != nil {
					return err
				}
				if smallCPU[t.name] == nil {
					smallCPU[t.name] = make(map[string]time.Duration)
				}
				for p := range after {
					smallCPU[t.name][p] += after[p] - before[p]
				}
				smallN[t.name] += n
				smallRate[t.name] = append(smallRate[t.name], rate)
				fmt.Printf("round %d  %-8s small %8.0f req/s\n", round+1, t.name, rate)
			}
		}
	}
	fmt.Println()
	report := func(what, unit string, samples map[string][]float64) {
		if len(samples) == 0 {
			return
		}
		base := median(samples[o.targets[0].name])
		fmt.Printf("%s (median of %d):\n", what, len(samples[o.targets[0].name]))
		for _, t := range o.targets {
			m := median(samples[t.name])
			fmt.Printf("  %-8s %10.1f %s  (min %.1f, max %.1f)  vs %s: %+.1f%%\n", t.name, m, unit,
				slices.Min(samples[t.name]), slices.Max(samples[t.name]), o.targets[0].name, (m/base-1)*100)
		}
		// Paired per-round ratios cancel slow drift in machine load.
		for _, t := range o.targets[1:] {
			var ratios []float64
			for i := range samples[t.name] {
				ratios = append(ratios, samples[t.name][i]/samples[o.targets[0].name][i])
			}
			fmt.Printf("  %s/%s median paired ratio %.3f (overhead %+.1f%%)\n", t.name, o.targets[0].name,
				median(ratios), (1-median(ratios))*100)
		}
	}
	report(fmt.Sprintf("%s PUT throughput", config.Size(o.big)), "MiB/s", bigMiBs)
	report(fmt.Sprintf("%s PUT rate, %d concurrent", config.Size(o.small), o.concurrency), "req/s", smallRate)
	procs := slices.Sorted(maps.Keys(o.watch))
	if len(o.watch) > 0 && o.big > 0 {
		fmt.Printf("CPU time per MiB during each target's big PUTs (µs/MiB; 10 ms clock ticks):\n")
		for _, t := range o.targets {
			mib := float64(bigBytes[t.name]) / (1 << 20)
			fmt.Printf("  %-8s %7.0f MiB:", t.name, mib)
			for _, p := range procs {
				fmt.Printf("  %s %6.1f", p, float64(bigCPU[t.name][p].Microseconds())/max(mib, 1))
			}
			fmt.Println()
		}
	}
	if len(o.watch) > 0 && o.duration > 0 {
		fmt.Printf("CPU time per %s PUT during each target's small-PUT phases (µs/request; 10 ms clock ticks):\n", config.Size(o.small))
		for _, t := range o.targets {
			fmt.Printf("  %-8s %7d requests:", t.name, smallN[t.name])
			for _, p := range procs {
				fmt.Printf("  %s %6.1f", p, float64(smallCPU[t.name][p].Microseconds())/float64(max(smallN[t.name], 1)))
			}
			fmt.Println()
		}
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// patternReader yields n bytes cycling through pattern.
type patternReader struct {
	pattern []byte
	off     int
	left    int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), r.left)], r.pattern[r.off:])
	r.off = (r.off + n) % len(r.pattern)
	r.left -= int64(n)
	return n, nil
}

func put(ctx context.Context, c *http.Client, url string, body io.Reader, n int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
	if err != nil {
		return err
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := sign.sign(ctx, req, body); err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return nil
}

func bigPut(c *http.Client, t target, pattern []byte, n int64, key string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	if err := put(ctx, c, t.url+"/"+key, &patternReader{pattern: pattern, left: n}, n); err != nil {
		return 0, err
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}

func smallPuts(c *http.Client, t target, body []byte, workers int, d time.Duration) (float64, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// A key per request: a signed request is never repeated
				// (replay protection would refuse it).
				url := fmt.Sprintf("%s/small/%d-%d", t.url, w, i)
				err := put(ctx, c, url, bytes.NewReader(body), int64(len(body)))
				if err != nil {
					if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
						return
					}
					errc <- err
					cancel()
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		return 0, 0, err
	default:
	}
	return float64(done.Load()) / elapsed.Seconds(), done.Load(), nil
}
