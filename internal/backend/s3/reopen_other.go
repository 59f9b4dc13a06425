//go:build !linux

package s3

import (
	"errors"
	"os"
)

// reopen is unsupported outside Linux: spooled parts are copied through
// a buffer (no sendfile).
func reopen(*os.File) (*os.File, error) { return nil, errors.New("zero-copy needs Linux") }
