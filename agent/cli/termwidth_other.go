//go:build !unix && !windows

package cli

import "os"

// terminalWidth is 0: this OS's terminals are not asked.
func terminalWidth(*os.File) int { return 0 }
