// Command loadgen measures Mizuchi's upload throughput and small-PUT
// request rate against several targets in the same run, interleaved round
// by round so that drift in machine load hits every target alike, and
// reports medians and each target's ratio to the first.
//
//	loadgen -target off=http://127.0.0.1:8080/bench -target on=http://127.0.0.1:8081/bench \
//	    -rounds 7 -big 256MiB -small 4KiB -concurrency 8 -duration 3s
//
// Big uploads are single sequential PUTs of -big bytes (generated, never
// held in memory); small uploads are -concurrency workers each PUTting
// -small bytes in a loop for -duration, each to a new key. Any non-200
// answer stops the run. With -access-key and -secret-key every PUT is
// SigV4-signed (small ones with their SHA-256, big ones UNSIGNED-PAYLOAD).
package main
