//go:build linux || darwin || freebsd

package sqlite

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/wardhq/ward/collector/store"
)

// checkFree returns store.ErrDiskFull when the filesystem holding the
// database at path has less room for unprivileged writers than
// minFree of its size.
func checkFree(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return fmt.Errorf("statfs %s: %w", filepath.Dir(path), err)
	}
	bsize := uint64(st.Bsize)
	avail, size := uint64(st.Bavail)*bsize, uint64(st.Blocks)*bsize
	if need := minFree(size); avail < need {
		return fmt.Errorf("%w: %d bytes free on the filesystem of %s, below %d", store.ErrDiskFull, avail, path, need)
	}
	return nil
}
