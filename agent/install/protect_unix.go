//go:build !windows

package install

import (
	"fmt"
	"os"
)

// Protect creates dir if needed and makes it readable and writable only by
// its owner (the service account: root).
func Protect(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("protect %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("protect %s: %w", dir, err)
	}
	return nil
}
