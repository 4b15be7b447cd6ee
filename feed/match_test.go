package feed_test

import (
	"errors"
	"testing"

	"github.com/wardhq/ward/feed"
)

func TestLineOf(t *testing.T) {
	f := example()
	cases := []struct {
		name  string
		d     feed.Device
		line  string // "" with ahead or err
		ahead bool
		err   bool
	}{
		{"macos same major", feed.Device{Platform: "darwin", Version: "15.7.1"}, "macos-15", false, false},
		{"macos newer major", feed.Device{Platform: "darwin", Version: "26.1"}, "", true, false},
		{"macos older major", feed.Device{Platform: "darwin", Version: "14.8"}, "", false, true},
		{"macos garbage", feed.Device{Platform: "darwin", Version: "fifteen"}, "", false, true},
		{"windows by build", feed.Device{Platform: "windows", Version: "10.0.26100", Build: "26100.7000", Edition: "Enterprise"}, "windows-11-24h2-enterprise", false, false},
		{"windows education is enterprise", feed.Device{Platform: "windows", Build: "26100.1", Edition: "Education"}, "windows-11-24h2-enterprise", false, false},
		{"windows pro has no line", feed.Device{Platform: "windows", Build: "26100.7000", Edition: "Professional"}, "", false, true},
		{"windows newer build", feed.Device{Platform: "windows", Build: "26200.10", Edition: "Enterprise"}, "", true, false},
		{"windows older build", feed.Device{Platform: "windows", Build: "19045.10", Edition: "Enterprise"}, "", false, true},
		{"windows no edition", feed.Device{Platform: "windows", Build: "26100.10"}, "", false, true},
		{"windows server", feed.Device{Platform: "windows", Build: "26100.10", Edition: "ServerStandard"}, "", false, true},
		{"windows no build", feed.Device{Platform: "windows", Edition: "Enterprise"}, "", false, true},
		{"ubuntu", feed.Device{Platform: "linux", OSID: "ubuntu", Version: "22.04"}, "ubuntu-22.04", false, false},
		{"ubuntu newer", feed.Device{Platform: "linux", OSID: "ubuntu", Version: "24.04"}, "", true, false},
		{"ubuntu older", feed.Device{Platform: "linux", OSID: "ubuntu", Version: "20.04"}, "", false, true},
		{"rocky minor is of the major line", feed.Device{Platform: "linux", OSID: "rocky", Version: "9.4"}, "rocky-9", false, false},
		{"rhel has no line here", feed.Device{Platform: "linux", OSID: "rhel", Version: "9.4"}, "", false, true},
		{"unknown distribution", feed.Device{Platform: "linux", OSID: "gentoo", Version: "2.17"}, "", false, true},
		{"no distribution", feed.Device{Platform: "linux", Version: "12"}, "", false, true},
		{"unknown platform", feed.Device{Platform: "plan9"}, "", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := f.LineOf(tc.d)
			if tc.err {
				if err == nil {
					t.Fatalf("LineOf = %+v, want an error", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Ahead != tc.ahead {
				t.Errorf("ahead = %v, want %v", m.Ahead, tc.ahead)
			}
			got := ""
			if m.Line != nil {
				got = m.Line.ID
			}
			if got != tc.line {
				t.Errorf("line = %q, want %q", got, tc.line)
			}
		})
	}
	if _, err := f.LineOf(feed.Device{Platform: "darwin", Version: "13.1"}); !errors.Is(err, feed.ErrNoLine) {
		t.Errorf("older macOS: %v, want ErrNoLine", err)
	}
}

func TestWindowsEdition(t *testing.T) {
	for id, want := range map[string]string{
		"Core": feed.EditionHomePro, "Professional": feed.EditionHomePro, "ProfessionalWorkstation": feed.EditionHomePro,
		"Enterprise": feed.EditionEnterprise, "EducationN": feed.EditionEnterprise, "IoTEnterprise": feed.EditionEnterprise,
		"EnterpriseS": feed.EditionLTSC, "EnterpriseSN": feed.EditionLTSC, "IoTEnterpriseS": feed.EditionIoTLTSC,
	} {
		if got, ok := feed.WindowsEdition(id); !ok || got != want {
			t.Errorf("WindowsEdition(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
	for _, id := range []string{"", "ServerStandard", "ServerDatacenter", "Something"} {
		if got, ok := feed.WindowsEdition(id); ok {
			t.Errorf("WindowsEdition(%q) = %q, want none", id, got)
		}
	}
}
