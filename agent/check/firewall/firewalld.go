package firewall

import (
	"errors"
	"strings"
)

// parseFirewalldState parses `firewall-cmd --state`: "running" or
// "not running" (firewall-cmd then exits 252). For the summary only.
func parseFirewalldState(data []byte) (bool, error) {
	switch strings.TrimSpace(string(data)) {
	case "running":
		return true, nil
	case "not running":
		return false, nil
	}
	return false, errors.New("firewall-cmd --state: unexpected output")
}
