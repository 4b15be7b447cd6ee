package osinfo

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func readSwVersCase(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/swvers", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseSwVers(t *testing.T) {
	tests := []struct {
		file                        string
		name, version, extra, build string
	}{
		{"sonoma-14.6.1.txt", "macOS", "14.6.1", "", "23G93"},
		{"ventura-13.3.1-rsr-a.txt", "macOS", "13.3.1", "(a)", "22E772610a"},
		{"catalina-10.15.5.txt", "Mac OS X", "10.15.5", "", "19F101"},
		{"highsierra-10.13.txt", "Mac OS X", "10.13", "", "17A405"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			v, err := parseSwVers(readSwVersCase(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			want := swVers{tt.name, tt.version, tt.extra, tt.build}
			if v != want {
				t.Errorf("got %+v, want %+v", v, want)
			}
		})
	}
}

func TestParseSwVersRejects(t *testing.T) {
	for name, data := range map[string]string{
		"empty":         "",
		"garbage":       string(readSwVersCase(t, "garbage.txt")),
		"truncated":     string(readSwVersCase(t, "truncated.txt")),
		"bad version":   "ProductName:\tmacOS\nProductVersion:\tfourteen\nBuildVersion:\t23G93\n",
		"two versions":  "ProductVersion:\t14.6\nProductVersion:\t14.6.1\n",
		"no version":    "ProductName:\tmacOS\nBuildVersion:\t23G93\n",
		"version value": "ProductVersion:\n",
	} {
		if v, err := parseSwVers([]byte(data)); err == nil {
			t.Errorf("%s: parsed %+v", name, v)
		}
	}
}

func darwinSource(swvers []byte, uname string) *source.Recorded {
	rec := source.NewRecorded(check.Host{OS: "darwin", Arch: "arm64"})
	if swvers != nil {
		rec.AddCommand("sw_vers", nil, 0, swvers, nil)
	}
	if uname != "" {
		rec.AddCommand("uname", []string{"-r"}, 0, []byte(uname), nil)
	}
	return rec
}

func TestCollectDarwin(t *testing.T) {
	cases := map[string]*source.Recorded{
		"sonoma-14.6.1":        darwinSource(readSwVersCase(t, "sonoma-14.6.1.txt"), "23.6.0\n"),
		"ventura-13.3.1-rsr-a": darwinSource(readSwVersCase(t, "ventura-13.3.1-rsr-a.txt"), ""),
		"catalina-sysctl":      darwinSource(readSwVersCase(t, "catalina-10.15.5.txt"), ""),
		"garbage":              darwinSource(readSwVersCase(t, "garbage.txt"), "23.6.0\n"),
		"no-sw_vers":           darwinSource(nil, "23.6.0\n"),
	}
	// catalina-sysctl: uname is missing, the kernel comes from sysctl.
	cases["catalina-sysctl"].AddError(source.Record{Kind: source.KindCommand, Tool: "uname", Args: []string{"-r"}}, fs.ErrNotExist)
	cases["catalina-sysctl"].AddCommand("sysctl", []string{"-n", "kern.osrelease"}, 0, []byte("19.5.0\n"), nil)
	cases["no-sw_vers"].AddError(source.Record{Kind: source.KindCommand, Tool: "sw_vers"}, fs.ErrNotExist)
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			got := Collect(context.Background(), src, "darwin")
			checktest.Golden(t, filepath.Join("testdata/swvers", name+".golden.json"), got)
			status := got.Collection.GetStatus()
			switch name {
			case "sonoma-14.6.1":
				if status != wardv1.CollectionStatus_COLLECTION_STATUS_OK || got.Version != "14.6.1" || got.Build != "23G93" || got.Kernel != "23.6.0" || got.Name != "macOS" {
					t.Errorf("got %v", got)
				}
			case "ventura-13.3.1-rsr-a":
				// uname is not recorded: the kernel is unknown, the version is not.
				if status != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL || got.Version != "13.3.1" || got.DisplayVersion != "13.3.1 (a)" || got.Kernel != "" {
					t.Errorf("got %v", got)
				}
			case "catalina-sysctl":
				if status != wardv1.CollectionStatus_COLLECTION_STATUS_OK || got.Kernel != "19.5.0" {
					t.Errorf("got %v", got)
				}
			case "garbage", "no-sw_vers":
				if status != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED || got.Version != "" || got.Collection.Reason == "" {
					t.Errorf("got %v", got)
				}
			}
		})
	}
}

func TestDarwinKernelRejectsGarbage(t *testing.T) {
	src := darwinSource(readSwVersCase(t, "sonoma-14.6.1.txt"), "Darwin\n")
	src.AddCommand("sysctl", []string{"-n", "kern.osrelease"}, 1, nil, []byte("sysctl: unknown oid"))
	got := Collect(context.Background(), src, "darwin")
	if got.Kernel != "" || got.Collection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL || !strings.Contains(got.Collection.Reason, "not a kernel release") {
		t.Errorf("got %v", got)
	}
}

func FuzzParseSwVers(f *testing.F) {
	for _, n := range []string{"sonoma-14.6.1.txt", "ventura-13.3.1-rsr-a.txt", "catalina-10.15.5.txt", "highsierra-10.13.txt", "garbage.txt", "truncated.txt"} {
		f.Add(readSwVersCase(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseSwVers(data)
		if err == nil && !productVersionRe.MatchString(v.ProductVersion) {
			t.Errorf("accepted version %q", v.ProductVersion)
		}
	})
}
