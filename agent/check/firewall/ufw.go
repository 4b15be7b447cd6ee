package firewall

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
)

// ufwStatus is what `ufw status verbose` says about itself. It is for the
// summary only: whether traffic is filtered is read from the live ruleset.
type ufwStatus struct {
	Active bool
	// DefaultIncoming is ufw's default for incoming traffic: deny, reject
	// or allow; empty when ufw is inactive (it then prints no defaults).
	DefaultIncoming string
}

// parseUFWStatus parses `ufw status verbose` (run with LC_ALL=C).
func parseUFWStatus(data []byte) (ufwStatus, error) {
	var st ufwStatus
	seen := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Status:"); ok {
			switch strings.TrimSpace(v) {
			case "active":
				st.Active, seen = true, true
			case "inactive":
				seen = true
			default:
				return ufwStatus{}, errors.New("ufw status: unknown state " + strings.TrimSpace(v))
			}
		}
		if v, ok := strings.CutPrefix(line, "Default:"); ok {
			for part := range strings.SplitSeq(v, ",") {
				part = strings.TrimSpace(part)
				if policy, ok := strings.CutSuffix(part, " (incoming)"); ok {
					st.DefaultIncoming = strings.TrimSpace(policy)
				}
			}
		}
	}
	if !seen {
		return ufwStatus{}, errors.New("ufw status: no Status line")
	}
	return st, nil
}
