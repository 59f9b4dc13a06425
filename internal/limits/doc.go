// Package limits enforces fair use per subject and per bucket: a token
// bucket over requests, concurrency leases over uploads in flight, a daily
// byte quota, and bandwidth shaping of upload bodies.
//
// Every refusal is decided in one call to the counters (one round trip
// with the redis store: a Lua script checks every scope and, only when all
// allow, takes a token, a lease and the declared bytes), before any byte
// of the body is read. A refused request takes nothing. Leases expire
// unless renewed, so a replica that dies holding slots frees them after
// LeaseTTL. Bandwidth is shaped per process.
package limits
