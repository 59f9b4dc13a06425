package s3

import (
	"os"
	"strconv"
)

// reopen opens f's file again with an offset of its own (at 0), which
// works for an unlinked spool file through /proc/self/fd.
func reopen(f *os.File) (*os.File, error) {
	return os.Open("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
}
