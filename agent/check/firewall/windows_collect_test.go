package firewall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/check/checktest/wintest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func windowsFake(t *testing.T, name string) *wintest.Fake {
	t.Helper()
	f := wintest.New()
	wintest.ReadJSON(t, filepath.Join("testdata", "registry", name+".json"), &f.Reg)
	path := filepath.Join("testdata", "wmi", name+".json")
	if _, err := os.Stat(path); err == nil {
		var rows []map[string]any
		wintest.ReadJSON(t, path, &rows)
		f.SetWMI(serviceNamespace, serviceQuery, rows, nil)
	} else {
		f.SetWMI(serviceNamespace, serviceQuery, nil, fmt.Errorf("wmi: %w", context.DeadlineExceeded))
	}
	return f
}

// profileStates renders profiles as "Domain:on/block Private:off/block ...".
func profileStates(f *wardv1.FirewallFacts) string {
	var out []string
	for _, p := range f.GetProfiles() {
		s := "unknown"
		if p.Enabled != nil {
			s = map[bool]string{true: "on", false: "off"}[p.GetEnabled()]
		}
		out = append(out, p.GetName()+":"+s+"/"+actionWord(p.GetDefaultInbound()))
	}
	return strings.Join(out, " ")
}

func TestCollectWindowsFirewall(t *testing.T) {
	tests := []struct {
		name     string
		status   wardv1.CollectionStatus
		enabled  string // true, false, unset
		profiles string
	}{
		{"all-on-defaults", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "true", "Domain:on/block Private:on/block Public:on/block"},
		{"public-off", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "false", "Domain:on/block Private:on/block Public:off/block"},
		{"gpo-override", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "true", "Domain:on/allow Private:on/block Public:on/block"},
		{"service-stopped", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "false", "Domain:off/block Private:off/block Public:off/block"},
		{"service-unknown", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, "unset", "Domain:unknown/block Private:unknown/block Public:unknown/block"},
		{"legacy-conflict", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, "false", "Domain:on/block Private:unknown/block Public:off/block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collect(context.Background(), windowsFake(t, tt.name), "windows")
			checktest.Golden(t, filepath.Join("testdata", "registry", tt.name+".golden.json"), got)
			enabled := "unset"
			if got.Enabled != nil {
				enabled = fmt.Sprint(got.GetEnabled())
			}
			if got.GetCollection().GetStatus() != tt.status || enabled != tt.enabled || profileStates(got) != tt.profiles || got.GetBackend() != "windows-firewall" {
				t.Errorf("got status %v enabled %s profiles %q (%s)", got.GetCollection().GetStatus(), enabled, profileStates(got), got.GetCollection().GetReason())
			}
		})
	}
}

func TestWindowsFirewallUnreadableRegistryIsUnknown(t *testing.T) {
	f := windowsFake(t, "all-on-defaults")
	f.RegistryErr[policyFirewallKey+"PublicProfile"] = errors.New("access denied")
	got := Collect(context.Background(), f, "windows")
	if got.Enabled != nil || got.GetProfiles()[2].Enabled != nil || got.GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
		t.Errorf("unreadable Public policy: %v", got)
	}
	// Nothing readable at all.
	f = wintest.New()
	f.SetWMI(serviceNamespace, serviceQuery, nil, check.ErrNotRecorded)
	got = Collect(context.Background(), f, "windows")
	if got.Enabled != nil {
		t.Errorf("empty registry: enabled %v", got.GetEnabled())
	}
}

func FuzzParseWindowsFirewall(f *testing.F) {
	f.Add(uint64(1), uint64(0), true, uint64(1), true, uint64(9), false, "Running")
	f.Add(uint64(0), uint64(1), false, uint64(0), true, uint64(1), true, "Stopped")
	f.Fuzz(func(t *testing.T, local, policy uint64, policyPresent bool, inbound uint64, inboundPresent bool, legacy uint64, legacyPresent bool, state string) {
		v := profileValues{
			localEnable:   regDWORD{value: local, present: true},
			policyEnable:  regDWORD{value: policy, present: policyPresent},
			legacyEnable:  regDWORD{value: legacy, present: legacyPresent},
			localInbound:  regDWORD{value: inbound, present: inboundPresent},
			policyInbound: regDWORD{},
		}
		got := windowsFirewallFacts([]profileValues{v, v, v}, []map[string]any{{"Name": "MpsSvc", "State": state}}, nil)
		if got.GetEnabled() && !strings.EqualFold(state, "Running") {
			t.Errorf("enabled with service %q", state)
		}
		if got.GetEnabled() {
			want := local
			if legacyPresent {
				want = legacy
			}
			if policyPresent {
				want = policy
			}
			if want == 0 {
				t.Errorf("enabled although the effective EnableFirewall is 0: %+v", v)
			}
		}
	})
}
