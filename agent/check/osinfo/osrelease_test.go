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

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		file, id, version, build string
	}{
		{"debian12.txt", "debian", "12", "12 (bookworm)"},
		{"ubuntu2404.txt", "ubuntu", "24.04", "24.04.1 LTS (Noble Numbat)"},
		{"fedora35.txt", "fedora", "35", "35 (Cloud Edition)"},
		{"arch.txt", "arch", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/osrelease", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			rel, err := parseOSRelease(data)
			if err != nil {
				t.Fatal(err)
			}
			if rel["ID"] != tt.id || rel["VERSION_ID"] != tt.version || rel["VERSION"] != tt.build {
				t.Errorf("got ID=%q VERSION_ID=%q VERSION=%q", rel["ID"], rel["VERSION_ID"], rel["VERSION"])
			}
		})
	}
}

func TestParseOSReleaseQuoting(t *testing.T) {
	rel, err := parseOSRelease([]byte("# c\nA=\"x \\\"y\\\" \\$z\"\nB='lit \\n'\nbad line\nlower=x\nC=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rel["A"] != `x "y" $z` || rel["B"] != `lit \n` || rel["C"] != "" {
		t.Errorf("got %q", rel)
	}
	if _, ok := rel["lower"]; ok {
		t.Error("lower-case key accepted")
	}
	for _, bad := range []string{"", "\n\n# only comments\n", "garbage"} {
		if _, err := parseOSRelease([]byte(bad)); err == nil {
			t.Errorf("parseOSRelease(%q) succeeded", bad)
		}
	}
}

func linuxSource(files map[string]string) *source.Recorded {
	rec := source.NewRecorded(check.Host{OS: "linux", Arch: "amd64"})
	for p, data := range files {
		rec.AddFile(p, []byte(data))
	}
	return rec
}

func TestCollectLinux(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("testdata/osrelease", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	cases := map[string]*source.Recorded{
		"debian12":     linuxSource(map[string]string{"/etc/os-release": read("debian12.txt"), "/proc/sys/kernel/osrelease": "6.18.44-fc-v595\n"}),
		"fedora35-usr": linuxSource(map[string]string{"/usr/lib/os-release": read("fedora35.txt"), "/proc/sys/kernel/osrelease": "5.14.10-300.fc35.x86_64\n"}),
		"arch":         linuxSource(map[string]string{"/etc/os-release": read("arch.txt"), "/proc/sys/kernel/osrelease": "6.10.3-arch1-2\n"}),
		"garbage":      linuxSource(map[string]string{"/etc/os-release": read("garbage.txt"), "/proc/sys/kernel/osrelease": "6.1.0\n"}),
		"nothing":      linuxSource(nil),
	}
	// fedora35-usr: /etc/os-release is absent, the fallback is read.
	cases["fedora35-usr"].AddError(source.Record{Kind: source.KindFile, Path: "/etc/os-release"}, fs.ErrNotExist)
	cases["arch"].AddError(source.Record{Kind: source.KindFile, Path: "/usr/lib/os-release"}, fs.ErrNotExist)
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			got := Collect(context.Background(), src, "linux")
			checktest.Golden(t, filepath.Join("testdata/osrelease", name+".golden.json"), got)
			switch name {
			case "garbage", "nothing":
				if got.Collection.Status == wardv1.CollectionStatus_COLLECTION_STATUS_OK || got.Id != "" {
					t.Errorf("unreadable os-release gave %v id=%q", got.Collection, got.Id)
				}
			default:
				if got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_OK || got.Id == "" || got.Kernel == "" {
					t.Errorf("got %v", got)
				}
			}
		})
	}
}

func TestCollectLinuxLive(t *testing.T) {
	got := Collect(context.Background(), &source.Live{Root: "testdata/liveroot"}, "linux")
	if got.Id != "debian" || got.Version != "12" || !strings.HasPrefix(got.Kernel, "6.") || got.Architecture == "" {
		t.Errorf("got %v", got)
	}
}

func FuzzParseOSRelease(f *testing.F) {
	for _, n := range []string{"debian12.txt", "ubuntu2404.txt", "fedora35.txt", "arch.txt", "garbage.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata/osrelease", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rel, err := parseOSRelease(data)
		if err == nil && len(rel) == 0 {
			t.Error("no error and no keys")
		}
		for k := range rel {
			if !validKey(k) {
				t.Errorf("invalid key %q", k)
			}
		}
	})
}
