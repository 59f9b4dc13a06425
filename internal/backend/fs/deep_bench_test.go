package fs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mizuchi-uploadr/mizuchi/internal/backend"
	"github.com/mizuchi-uploadr/mizuchi/internal/backend/fs"
)

// BenchmarkPutDeepKey uploads one byte under keys of growing depth, each
// in a new directory chain (the most work a key can cause): the time per
// upload must grow linearly with the depth. The per-level cost is ns/op
// divided by depth.
func BenchmarkPutDeepKey(b *testing.B) {
	for _, depth := range []int{1, 10, 50, fs.MaxKeyDepth} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			s := newStore(b, b.TempDir())
			tail := strings.Repeat("n/", max(depth-2, 0)) + "leaf"
			i := 0
			for b.Loop() {
				i++
				key := fmt.Sprintf("r%d/%s", i, tail)
				if depth == 1 {
					key = fmt.Sprintf("leaf%d", i)
				}
				_, err := s.PutObject(context.Background(), &backend.PutObjectInput{Key: key, Body: strings.NewReader("x"), Size: 1})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
