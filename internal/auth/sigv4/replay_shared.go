package sigv4

// ReplaySet is a replay cache that outlives the Authenticators using it:
// a configuration reload builds new Authenticators, and a signature
// accepted before the reload must still be refused as a replay after it.
type ReplaySet struct{ c *replayCache }

// NewReplaySet makes a replay cache of capacity entries (100000 when
// capacity ≤ 0).
func NewReplaySet(capacity int) *ReplaySet {
	if capacity <= 0 {
		capacity = defaultReplayCapacity
	}
	return &ReplaySet{c: newReplayCache(capacity)}
}
