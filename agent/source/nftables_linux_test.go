package source

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/google/nftables/expr"
)

func TestReduceNftRule(t *testing.T) {
	tests := []struct {
		name    string
		exprs   []expr.Any
		verdict string
		target  string
		matches int
	}{
		{"catch-all drop", []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}, "drop", "", 0},
		{"iif lo accept", []expr.Any{&expr.Meta{Key: expr.MetaKeyIIF, Register: 1}, &expr.Cmp{Register: 1}, &expr.Verdict{Kind: expr.VerdictAccept}}, "accept", "", 2},
		{"reject", []expr.Any{&expr.Reject{}}, "reject", "", 0},
		{"jump", []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "ufw-before-input"}}, "jump", "ufw-before-input", 0},
		{"xt match counts", []expr.Any{&expr.Match{Name: "conntrack"}, &expr.Verdict{Kind: expr.VerdictDrop}}, "drop", "", 1},
		{"xt REJECT target", []expr.Any{&expr.Target{Name: "REJECT"}}, "reject", "", 0},
		{"log only", []expr.Any{&expr.Log{}}, "", "", 0},
		{"limit selects", []expr.Any{&expr.Limit{}, &expr.Verdict{Kind: expr.VerdictDrop}}, "drop", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reduceNftRule(tt.exprs)
			if got.Verdict != tt.verdict || got.Target != tt.target || got.Matches != tt.matches || len(got.Exprs) != len(tt.exprs) {
				t.Errorf("got %+v", got)
			}
		})
	}
	if got := reduceNftRule([]expr.Any{&expr.Counter{}, &expr.Verdict{}}); !slices.Equal(got.Exprs, []string{"counter", "verdict"}) {
		t.Errorf("exprs %v", got.Exprs)
	}
}

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
