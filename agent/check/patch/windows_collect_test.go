package patch

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/check/checktest/wintest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func windowsFake(t *testing.T, name string) *wintest.Fake {
	t.Helper()
	f := wintest.New()
	wintest.ReadJSON(t, filepath.Join("testdata", "registry", name+".json"), &f.Reg)
	var wmi struct {
		Service []map[string]any `json:"service"`
		Hotfix  []map[string]any `json:"hotfix"`
	}
	wintest.ReadJSON(t, filepath.Join("testdata", "wmi", name+".json"), &wmi)
	f.SetWMI(windowsCIMV2, wuauservQuery, wmi.Service, nil)
	if wmi.Hotfix != nil {
		f.SetWMI(windowsCIMV2, hotfixQuery, wmi.Hotfix, nil)
	}
	out, err := os.ReadFile(filepath.Join("testdata", "powershell", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	f.SetCommand("powershell", windowsUpdateArgs, 0, out, nil)
	return f
}

func optInt(p *int32) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func optBool(p *bool) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func TestCollectWindowsUpdate(t *testing.T) {
	win := &wardv1.OSFacts{Platform: "windows"}
	tests := []struct {
		name                          string
		status                        wardv1.CollectionStatus
		pending, security, reboot, au string
		last                          string
	}{
		{"up-to-date", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "0", "0", "false", "true", "2024-09-10T17:22:31Z"},
		{"pending-security-reboot", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "2", "1", "true", "true", "2024-08-14T09:05:12Z"},
		{"search-offline", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, "unset", "unset", "false", "true", "2024-08-14T09:05:12Z"},
		{"no-history-qfe", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "1", "1", "false", "true", "2024-08-14T00:00:00Z"},
		{"garbage", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, "unset", "unset", "false", "true", ""},
		{"au-disabled", wardv1.CollectionStatus_COLLECTION_STATUS_OK, "0", "0", "false", "false", "2024-09-10T17:22:31Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collect(context.Background(), windowsFake(t, tt.name), win)
			checktest.Golden(t, filepath.Join("testdata", "powershell", tt.name+".golden.json"), got)
			last := ""
			if got.LastUpdateInstalledAt != nil {
				last = got.GetLastUpdateInstalledAt().AsTime().Format(time.RFC3339)
			}
			if got.GetCollection().GetStatus() != tt.status || got.GetManager() != "windows-update" ||
				optInt(got.PendingUpdates) != tt.pending || optInt(got.PendingSecurityUpdates) != tt.security ||
				optBool(got.RebootRequired) != tt.reboot || optBool(got.AutomaticUpdates) != tt.au || last != tt.last {
				t.Errorf("got status %v pending %s security %s reboot %s au %s last %q (%s)", got.GetCollection().GetStatus(),
					optInt(got.PendingUpdates), optInt(got.PendingSecurityUpdates), optBool(got.RebootRequired),
					optBool(got.AutomaticUpdates), last, got.GetCollection().GetReason())
			}
		})
	}
}

func TestWindowsUpdateFailuresAreUnknown(t *testing.T) {
	win := &wardv1.OSFacts{Platform: "windows"}
	for name, set := range map[string]func(*wintest.Fake){
		"timeout": func(f *wintest.Fake) { f.SetCommand("powershell", windowsUpdateArgs, 0, nil, context.DeadlineExceeded) },
		"exit 1": func(f *wintest.Fake) {
			f.SetCommand("powershell", windowsUpdateArgs, 1, []byte(`{"ResultCode":2,"Updates":[]}`), nil)
		},
		"empty": func(f *wintest.Fake) { f.SetCommand("powershell", windowsUpdateArgs, 0, []byte{}, nil) },
		"truncated": func(f *wintest.Fake) {
			f.SetCommand("powershell", windowsUpdateArgs, 0, []byte(`{"ResultCode":2,"Updates":[{"Title":"x",`), nil)
		},
		"aborted": func(f *wintest.Fake) {
			f.SetCommand("powershell", windowsUpdateArgs, 0, []byte(`{"ResultCode":5,"Updates":[]}`), nil)
		},
		"no flag": func(f *wintest.Fake) {
			f.SetCommand("powershell", windowsUpdateArgs, 0, []byte(`{"ResultCode":2,"Updates":[{"Title":"x"}]}`), nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := windowsFake(t, "up-to-date")
			set(f)
			got := Collect(context.Background(), f, win)
			if got.PendingSecurityUpdates != nil || got.PendingUpdates != nil || got.GetCollection().GetStatus() == wardv1.CollectionStatus_COLLECTION_STATUS_OK {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestWindowsRebootAndAutoUpdateUnknown(t *testing.T) {
	f := windowsFake(t, "up-to-date")
	f.RegistryErr[rebootKeys[1]] = fmt.Errorf("registry: %w", fs.ErrPermission)
	f.RegistryErr[auPolicyKey] = fmt.Errorf("registry: %w", fs.ErrPermission)
	got := Collect(context.Background(), f, &wardv1.OSFacts{Platform: "windows"})
	if got.RebootRequired != nil || got.AutomaticUpdates != nil || got.GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
		t.Errorf("got %v", got)
	}
	f = windowsFake(t, "up-to-date")
	f.SetWMI(windowsCIMV2, wuauservQuery, nil, check.ErrNotRecorded)
	if got := Collect(context.Background(), f, &wardv1.OSFacts{Platform: "windows"}); got.AutomaticUpdates != nil {
		t.Errorf("service unreadable: automatic %v", got.GetAutomaticUpdates())
	}
	f = windowsFake(t, "up-to-date")
	f.SetWMI(windowsCIMV2, wuauservQuery, []map[string]any{{"Name": "wuauserv", "StartMode": "Disabled", "State": "Stopped"}}, nil)
	if got := Collect(context.Background(), f, &wardv1.OSFacts{Platform: "windows"}); got.AutomaticUpdates == nil || got.GetAutomaticUpdates() {
		t.Errorf("service disabled: automatic %v", got.AutomaticUpdates)
	}
}

func TestParseHotfixDate(t *testing.T) {
	for in, want := range map[string]string{
		"2024-09-10": "2024-09-10", "20240910": "2024-09-10", "8/14/2024": "2024-08-14", "14.08.2024": "2024-08-14",
		"9/10/2024": "", "31/02/2024": "", "": "", "01cb7a4b5d6e": "", "13/13/2024": "", "17.1.0000": "", "0001-01-01": "",
	} {
		got := ""
		if t, ok := parseHotfixDate(in); ok {
			got = t.Format("2006-01-02")
		}
		if got != want {
			t.Errorf("parseHotfixDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWindowsUpdateScriptIsOneLineWithoutDoubleQuotes(t *testing.T) {
	if strings.ContainsAny(windowsUpdateScript, "\"\n\r") {
		t.Error("the script must be one line without double quotes to survive the Windows command line")
	}
}

func FuzzParseWindowsUpdate(f *testing.F) {
	for _, name := range []string{"up-to-date", "pending-security-reboot", "search-offline", "no-history-qfe", "garbage"} {
		data, err := os.ReadFile(filepath.Join("testdata", "powershell", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseWindowsUpdate(data)
		if err != nil {
			if r != nil {
				t.Error("result with error")
			}
			return
		}
		if r.searchErr != "" && len(r.pending) > 0 {
			t.Errorf("pending updates despite search error %q", r.searchErr)
		}
	})
}

func FuzzParseHotfixDate(f *testing.F) {
	for _, s := range []string{"8/14/2024", "9/10/2024", "2024-09-10", "20240910", "14.08.2024"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := parseHotfixDate(s); ok && (d.Year() < 1000 || d.Year() > 9999) {
			t.Errorf("%q -> %v", s, d)
		}
	})
}
