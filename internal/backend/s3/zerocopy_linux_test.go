//go:build linux

package s3

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/telemetry"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

const helperEnv = "MIZUCHI_S3_ZEROCOPY_HELPER"

// TestSpooledPartsUseSendfile counts the syscalls, rather than trusting
// the code path: the test binary re-runs itself under strace as a helper
// that uploads a 24 MiB object as spooled parts, and the bytes returned by
// sendfile(2) are added up.
func TestSpooledPartsUseSendfile(t *testing.T) {
	strace := testproc.LookPath(t, "strace")
	e := startEnv(t)
	const size = 24 << 20
	cases := []struct {
		name         string
		zeroCopy     bool
		wantSendfile bool
	}{
		{name: "zero-copy on", zeroCopy: true, wantSendfile: true},
		{name: "zero-copy off", zeroCopy: false, wantSendfile: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "strace.out")
			cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=sendfile,splice,copy_file_range", "-e", "signal=none", "-o", out,
				os.Args[0], "-test.run=^TestZeroCopyHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"=1",
				"H_ENDPOINT="+e.gw.Endpoint, "H_AK="+e.gw.AccessKey, "H_SK="+e.gw.SecretKey,
				"H_ZEROCOPY="+strconv.FormatBool(tc.zeroCopy), "H_SIZE="+strconv.Itoa(size), "H_KEY="+tc.name)
			res, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, res)
			}
			sent, calls := sendfileBytes(t, out)
			metric := regexp.MustCompile(`sendfile_metric=(\d+)`).FindSubmatch(res)
			t.Logf("sendfile: %d calls, %d bytes; helper: %s", calls, sent, bytes.TrimSpace(res))
			if tc.wantSendfile {
				if sent != size {
					t.Fatalf("sendfile moved %d of %d bytes", sent, size)
				}
				if metric == nil || string(metric[1]) != strconv.Itoa(size) {
					t.Errorf("zero-copy metric %q, want %d", metric, size)
				}
			} else if sent != 0 {
				t.Fatalf("zero-copy off but sendfile moved %d bytes", sent)
			}
			assertStored(t, e, "zc/"+tc.name, randBytes(size))
		})
	}
}

var sendfileRe = regexp.MustCompile(`sendfile\(.*\)\s+=\s+(\d+)`)

func sendfileBytes(t *testing.T, path string) (int64, int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum int64
	calls := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := sendfileRe.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			sum += n
			calls++
		}
	}
	return sum, calls
}

// TestZeroCopyHelper is the process traced above; alone it does nothing.
func TestZeroCopyHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	size, _ := strconv.Atoi(os.Getenv("H_SIZE"))
	on := os.Getenv("H_ZEROCOPY") == "true"
	m := telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.BuildInfo{})
	s, err := New(context.Background(), Options{
		Config: config.S3Backend{Bucket: testBucket, Region: "us-east-1", Endpoint: os.Getenv("H_ENDPOINT"),
			ForcePathStyle: true, AccessKey: os.Getenv("H_AK"), SecretKey: os.Getenv("H_SK")},
		Upload: config.Upload{MultipartThreshold: 8 << 20, PartSize: 8 << 20, ConcurrentParts: 2,
			SpoolDir: t.TempDir()},
		ZeroCopy: config.ZeroCopy{Enabled: &on},
		Memory:   NewMemoryBudget(0), // every part spooled
		Metrics:  m,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObject(context.Background(), &backend.PutObjectInput{Key: "zc/" + os.Getenv("H_KEY"),
		Body: bytes.NewReader(randBytes(size)), Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("sendfile_metric=%d buffered_metric=%d\n",
		int64(testutil.ToFloat64(m.ZeroCopyBytes.WithLabelValues(modeSendfile))),
		int64(testutil.ToFloat64(m.ZeroCopyBytes.WithLabelValues(modeBuffered))))
}
