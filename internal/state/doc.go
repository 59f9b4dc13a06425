// Package state is what Mizuchi replicas share: a small key-value store
// with two primitives, claim-once (the SigV4 replay set) and an atomic
// counter with expiry (limits). The memory backend serves one process; the
// redis backend (Valkey or Redis, go-redis) serves a fleet.
//
// A store that cannot answer returns an error wrapping ErrUnavailable;
// callers fail closed (503 SlowDown), never allow unchecked.
package state
