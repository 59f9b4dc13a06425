// Command soak is a bounded load generator for one Mizuchi bucket: N
// concurrent uploaders PUT objects of mixed sizes (log-uniform between
// -min and -max) for a fixed duration or request count, then it reports
// throughput, latency percentiles and errors, and checks that Mizuchi's
// goroutines and open file descriptors (the go_goroutines and
// process_open_fds metrics of its metrics listener) return to the
// baseline measured before the run.
//
//	soak -url http://127.0.0.1:8080/bucket -metrics http://127.0.0.1:9090/metrics \
//	    -concurrency 32 -duration 60s -min 4KiB -max 8MiB
//
// Every response must be 200 with an ETag equal to the MD5 of the body sent
// (single PUTs). Exit status: 0 when there were no errors and the process
// returned to its baseline, 1 otherwise, 2 for bad flags.
package main
