package osinfo

import (
	"context"
	"errors"
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
	return f
}

func TestCollectWindows(t *testing.T) {
	tests := []struct {
		name    string
		status  wardv1.CollectionStatus
		osName  string
		version string
		build   string
		display string
		edition string
	}{
		{"win10-pro-1903", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "Windows 10 Pro", "10.0.18362", "18362.657", "1903", "Professional"},
		{"win10-enterprise-1703", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "Windows 10 Enterprise", "10.0.15063", "15063.726", "1703", "Enterprise"},
		{"win11-pro-23h2", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "Windows 11 Pro", "10.0.22631", "22631.4169", "23H2", "Professional"},
		{"server2022-container", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, "", "10.0.20348", "20348.4170", "", ""},
		{"win10-pro-1903-no-ubr", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, "Windows 10 Pro", "10.0.18362", "", "1903", "Professional"},
		{"empty-key", wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, "", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collect(context.Background(), windowsFake(t, tt.name), "windows")
			if got.GetCollection().GetStatus() != tt.status || got.GetName() != tt.osName ||
				got.GetVersion() != tt.version || got.GetBuild() != tt.build || got.GetDisplayVersion() != tt.display || got.GetEdition() != tt.edition {
				t.Errorf("got status %v name %q version %q build %q display %q edition %q (reason %q)", got.GetCollection().GetStatus(),
					got.GetName(), got.GetVersion(), got.GetBuild(), got.GetDisplayVersion(), got.GetEdition(), got.GetCollection().GetReason())
			}
			if got.GetKernel() != got.GetVersion() {
				t.Errorf("kernel %q != version %q", got.GetKernel(), got.GetVersion())
			}
			checktest.Golden(t, filepath.Join("testdata", "registry", tt.name+".golden.json"), got)
		})
	}
}

func TestCollectWindowsUnreadable(t *testing.T) {
	f := wintest.New()
	f.RegistryErr[ntCurrentVersion] = errors.New("access denied")
	got := Collect(context.Background(), f, "windows")
	if got.GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED || got.GetBuild() != "" ||
		!strings.Contains(got.GetCollection().GetReason(), "access denied") {
		t.Errorf("unreadable registry: got %v", got)
	}
}

func TestParseWindowsVersionNotWindows11ServerName(t *testing.T) {
	s, b := "Windows Server 2025 Standard", "26100"
	got := parseWindowsVersion(map[string]check.RegistryValue{"ProductName": {String: &s}, "CurrentBuildNumber": {String: &b}})
	if got.GetName() != s {
		t.Errorf("server name rewritten to %q", got.GetName())
	}
}

func FuzzParseWindowsVersion(f *testing.F) {
	f.Add("Windows 10 Pro", "22631", "23H2", uint64(10), uint64(0), uint64(4169))
	f.Add("", "x", "", uint64(0), uint64(0), uint64(1<<40))
	f.Fuzz(func(t *testing.T, name, build, display string, major, minor, ubr uint64) {
		vals := map[string]check.RegistryValue{
			"ProductName": {String: &name}, "CurrentBuildNumber": {String: &build}, "DisplayVersion": {String: &display},
			"CurrentMajorVersionNumber": {Integer: &major}, "CurrentMinorVersionNumber": {Integer: &minor}, "UBR": {Integer: &ubr},
		}
		got := parseWindowsVersion(vals)
		if got.GetCollection().GetStatus() == wardv1.CollectionStatus_COLLECTION_STATUS_OK && (got.GetBuild() == "" || got.GetVersion() == "") {
			t.Errorf("OK without build/version: %v", got)
		}
		if got.GetBuild() != "" && !strings.HasPrefix(got.GetBuild(), strings.TrimLeft(strings.TrimSpace(build), "0")) {
			t.Errorf("build %q not from %q", got.GetBuild(), build)
		}
	})
}
