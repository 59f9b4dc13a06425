package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var codeRE = regexp.MustCompile(`<Code>([^<]*)</Code>`)

type result struct {
	put     bool
	outcome string // "200", "503 SlowDown", "transport: …"
	latency time.Duration
}

func main() {
	url := flag.String("url", "", "bucket URL, e.g. http://127.0.0.1:8080/replay")
	keys := flag.Int("keys", 200, "number of access keys (rk0 … rkN-1, secrets rs0 …)")
	rate := flag.Int("rate", 2000, "signed PUTs started per second")
	probeRate := flag.Int("probe-rate", 0, "signed HeadBucket requests per second from the last key")
	duration := flag.Duration("duration", 60*time.Second, "how long to send")
	concurrency := flag.Int("concurrency", 256, "most requests in flight")
	size := flag.Int("size", 256, "body bytes per PUT")
	region := flag.String("region", "us-east-1", "signing region")
	flag.Parse()
	if *url == "" || *keys < 1 || *rate < 1 || *concurrency < 1 || *size < 0 {
		flag.Usage()
		os.Exit(2)
	}
	base := strings.TrimSuffix(*url, "/")

	body := make([]byte, *size)
	_, _ = rand.Read(body)
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	emptyHash := hex.EncodeToString(func() []byte { s := sha256.Sum256(nil); return s[:] }())

	tr := &http.Transport{MaxIdleConns: *concurrency, MaxIdleConnsPerHost: *concurrency, IdleConnTimeout: 30 * time.Second}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })

	send := func(put bool, key string, n int64) result {
		var req *http.Request
		var err error
		if put {
			req, err = http.NewRequest(http.MethodPut, fmt.Sprintf("%s/%s/o%d", base, key, n), strings.NewReader(string(body)))
			req.ContentLength = int64(len(body))
			req.Header.Set("X-Amz-Content-Sha256", hash)
		} else {
			req, err = http.NewRequest(http.MethodHead, base, nil)
			req.Header.Set("X-Amz-Content-Sha256", emptyHash)
			req.Header.Set("X-Probe", fmt.Sprint(n)) // signed: every probe is distinct
		}
		if err != nil {
			return result{put: put, outcome: "request: " + err.Error()}
		}
		secret := "rs" + strings.TrimPrefix(key, "rk")
		start := time.Now()
		h := emptyHash
		if put {
			h = hash
		}
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, req, h, "s3", *region, start); err != nil {
			return result{put: put, outcome: "sign: " + err.Error()}
		}
		resp, err := client.Do(req)
		if err != nil {
			return result{put: put, outcome: "transport: " + err.Error(), latency: time.Since(start)}
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out := fmt.Sprint(resp.StatusCode)
		if m := codeRE.FindSubmatch(b); m != nil {
			out += " " + string(m[1])
		}
		return result{put: put, outcome: out, latency: time.Since(start)}
	}

	var (
		mu        sync.Mutex
		putLat    []time.Duration
		outcomes  = map[string]int{}
		seq       atomic.Int64
		dropped   atomic.Int64
		wg        sync.WaitGroup
		slots     = make(chan struct{}, *concurrency)
		deadline  = time.Now().Add(*duration)
		startedAt = time.Now()
	)
	record := func(r result) {
		mu.Lock()
		defer mu.Unlock()
		kind := "HeadBucket"
		if r.put {
			kind = "PutObject"
			putLat = append(putLat, r.latency)
		}
		outcomes[kind+" "+r.outcome]++
	}
	// start launches one request unless -concurrency are in flight, in
	// which case it is counted as not sent (the server could not keep up).
	start := func(put bool, key string) {
		n := seq.Add(1)
		select {
		case slots <- struct{}{}:
		default:
			dropped.Add(1)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			record(send(put, key, n))
		}()
	}
	// One ticker per second slice: rate/100 requests every 10 ms.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var puts, probes float64
	i := 0
	hostile := fmt.Sprintf("rk%d", *keys-1)
	for now := range tick.C {
		if now.After(deadline) {
			break
		}
		elapsed := now.Sub(startedAt).Seconds()
		for ; puts < elapsed*float64(*rate); puts++ {
			start(true, fmt.Sprintf("rk%d", i%*keys))
			i++
		}
		for ; probes < elapsed*float64(*probeRate); probes++ {
			start(false, hostile)
		}
	}
	wg.Wait()
	wall := time.Since(startedAt)

	slices.Sort(putLat)
	pct := func(p float64) time.Duration {
		if len(putLat) == 0 {
			return 0
		}
		return putLat[min(len(putLat)-1, int(p*float64(len(putLat))))]
	}
	okPuts := outcomes["PutObject 200"]
	fmt.Printf("keys %d, target %d PUT/s + %d HeadBucket/s for %s (wall %s)\n", *keys, *rate, *probeRate, *duration, wall.Round(time.Millisecond))
	fmt.Printf("PUT 200: %d (%.0f/s), latency p50 %s p99 %s max %s; not sent (concurrency %d reached): %d\n",
		okPuts, float64(okPuts)/duration.Seconds(), pct(0.5).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond),
		pct(1).Round(time.Millisecond), *concurrency, dropped.Load())
	names := make([]string, 0, len(outcomes))
	for k := range outcomes {
		names = append(names, k)
	}
	sort.Strings(names)
	bad := dropped.Load() > 0
	for _, k := range names {
		fmt.Printf("  %-40s %d\n", k, outcomes[k])
		if strings.HasPrefix(k, "PutObject ") && k != "PutObject 200" || strings.Contains(k, "SlowDown") {
			bad = true
		}
	}
	fmt.Printf("SlowDown answers: %d\n", outcomes["PutObject 503 SlowDown"]+outcomes["HeadBucket 503"])
	if bad {
		os.Exit(1)
	}
}
