// Command replayload drives signed uploads from many SigV4 access keys at
// a fixed rate against one Mizuchi bucket with replay protection, and
// counts what replay protection refused.
//
//	replayload -url http://127.0.0.1:8080/replay -keys 200 -rate 2000 -duration 120s \
//	    -probe-rate 500
//
// Access key i (0 ≤ i < -keys) is "rk<i>" with secret "rs<i>"; every PUT
// is a distinct object under "<access key>/", signed (header SigV4, signed
// payload hash) and sent open-loop: -rate requests per second are started
// whatever the latency, by up to -concurrency workers. With -probe-rate, a
// "hostile" key (the last one) also sends that many distinct signed
// HeadBucket requests per second, which must not take any replay entry.
//
// It reports the achieved rate, p50/p99/max latency, and the answers by
// status and S3 code. Exit status: 0 when every PUT was 200 (in
// particular no SlowDown), 1 otherwise, 2 for bad flags.
package main
