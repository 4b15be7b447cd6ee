package source

import (
	"context"
	"os"
	"testing"
)

// TestNftablesLive reads this machine's ruleset. As root it must succeed;
// the namespace tests in agent/check/firewall load real rulesets.
func TestNftablesLive(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root: reading nftables must work there")
		}
		t.Skip("reading nftables needs CAP_NET_ADMIN")
	}
	rs, err := NewLive().Nftables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Tables == nil {
		t.Error("Tables is nil, want an empty or filled list")
	}
}
