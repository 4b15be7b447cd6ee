//go:build !windows

package install

import (
	"io/fs"
	"syscall"
)

const checksTrust = true

// owner returns the uid that owns a file.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
