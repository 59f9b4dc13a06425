package app

import (
	"context"
	"testing"
)

// BenchmarkAcquireRelease measures what holding the current generation
// adds to every request, with all cores taking it at once.
func BenchmarkAcquireRelease(b *testing.B) {
	a := &App{}
	a.gen.Store(&generation{App: a, closed: make(chan struct{})})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.acquire().release()
		}
	})
}

// BenchmarkReload measures a reload of a configuration with one
// filesystem bucket: load, validate, build, swap.
func BenchmarkReload(b *testing.B) {
	a, _, _ := reloadApp(b, bucketA)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := a.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
