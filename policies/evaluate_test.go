package policies

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

const (
	okStatus      = wardv1.CollectionStatus_COLLECTION_STATUS_OK
	partialStatus = wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL
	failedStatus  = wardv1.CollectionStatus_COLLECTION_STATUS_FAILED
	unsupported   = wardv1.CollectionStatus_COLLECTION_STATUS_UNSUPPORTED
)

func mustEmbedded(t testing.TB, name string) *Policy {
	t.Helper()
	p, err := Embedded(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func resultFor(results []Result, id string) (Result, bool) {
	for _, r := range results {
		if r.RuleID == id {
			return r, true
		}
	}
	return Result{}, false
}

// TestCompliantFactsPass: each platform's compliant facts pass every rule of
// both shipped policies that applies to the platform, and only those rules
// are reported.
func TestCompliantFactsPass(t *testing.T) {
	for _, name := range Names() {
		p := mustEmbedded(t, name)
		for _, platform := range Platforms {
			results := Evaluate(context.Background(), p, compliantFacts(platform), Options{Now: testNow, Feed: testFeedInput})
			want := 0
			for _, r := range p.Rules {
				if contains(r.Platforms, platform) {
					want++
				}
			}
			if len(results) != want {
				t.Errorf("%s/%s: %d results, want %d", name, platform, len(results), want)
			}
			for _, r := range results {
				if r.Status != StatusPass || r.Reason != "" || r.Deadline != nil || r.Observed == "" ||
					r.Expected == "" || r.Remediation == "" || r.Title == "" {
					t.Errorf("%s/%s: %+v, want a complete PASS", name, platform, r)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestShippedRules walks every status path of every shipped rule on every
// platform it applies to.
func TestShippedRules(t *testing.T) {
	sysVol := func(f *wardv1.Facts) *wardv1.Volume { return f.DiskEncryption.Volumes[0] }
	swapVol := func(f *wardv1.Facts) *wardv1.Volume { return f.DiskEncryption.Volumes[4] }
	tests := []struct {
		name     string
		policy   string
		platform string
		rule     string
		mutate   func(f *wardv1.Facts)
		want     Status
		observed string // exact, when set
		reason   string // substring of Reason, when set
	}{
		// baseline disk-encrypted.
		{"linux root plain", "baseline", "linux", "disk-encrypted", func(f *wardv1.Facts) {
			v := sysVol(f)
			v.Device, v.Encrypted, v.Method, v.Protection, v.Conversion = "/dev/vda", ptr(false), "", protOff, convNone
		}, StatusFail, "/ (/dev/vda) is not encrypted", ""},
		{"linux root encrypted", "baseline", "linux", "disk-encrypted", nil, StatusPass,
			"/ (/dev/mapper/vg-root) is encrypted (LUKS2)", ""},
		{"windows suspended", "baseline", "windows", "disk-encrypted", func(f *wardv1.Facts) {
			sysVol(f).Protection = protSuspended
		}, StatusFail, "BitLocker protection is suspended on C:", ""},
		{"windows decrypting", "baseline", "windows", "disk-encrypted", func(f *wardv1.Facts) {
			sysVol(f).Conversion, sysVol(f).PercentEncrypted = convDecrypt, ptr(40.0)
		}, StatusFail, "C: is being decrypted (40% still encrypted)", ""},
		{"windows protection off", "baseline", "windows", "disk-encrypted", func(f *wardv1.Facts) {
			sysVol(f).Protection = protOff
		}, StatusFail, "C: is encrypted (BitLocker XTS-AES 128) but its protection is off", ""},
		{"darwin encrypting", "baseline", "darwin", "disk-encrypted", func(f *wardv1.Facts) {
			sysVol(f).Conversion, sysVol(f).PercentEncrypted = convEncrypt, ptr(47.0)
		}, StatusFail, "/System/Volumes/Data (disk3s5) is being encrypted (47% done)", ""},
		{"darwin hardware only", "baseline", "darwin", "disk-encrypted", func(f *wardv1.Facts) {
			sysVol(f).Encrypted, sysVol(f).Method, sysVol(f).Protection, sysVol(f).Conversion = ptr(false), "", protOff, convNone
		}, StatusFail, "/System/Volumes/Data (disk3s5) is not encrypted", ""},
		{"encrypted unknown", "baseline", "linux", "disk-encrypted", func(f *wardv1.Facts) {
			v := sysVol(f)
			v.Encrypted, v.Protection, v.Conversion, v.Reason = nil, 0, 0, "cannot read the LUKS header"
			f.DiskEncryption.Collection = coll(partialStatus, "/: cannot read the LUKS header")
		}, StatusUnknown, "cannot tell whether / (/dev/mapper/vg-root) is encrypted: cannot read the LUKS header",
			`/: cannot read the LUKS header; the fact "encrypted" was not collected (disk.volumes[].encrypted)`},
		{"protection unspecified", "baseline", "windows", "disk-encrypted", func(f *wardv1.Facts) {
			sysVol(f).Protection = 0
		}, StatusUnknown, "", `the fact "protection" was not collected (disk.volumes[].protection)`},
		{"no system volume", "baseline", "linux", "disk-encrypted", func(f *wardv1.Facts) {
			f.DiskEncryption.Volumes = f.DiskEncryption.Volumes[1:]
		}, StatusUnknown, "no system disk was found", "no system disk was found among the disk facts"},
		{"no system volume but one unencrypted", "baseline", "linux", "disk-encrypted", func(f *wardv1.Facts) {
			f.DiskEncryption.Volumes = nil
		}, StatusUnknown, "", "no system disk was found"},
		{"disk collection failed", "baseline", "windows", "disk-encrypted", func(f *wardv1.Facts) {
			f.DiskEncryption = &wardv1.DiskEncryptionFacts{Collection: coll(failedStatus, "access denied reading Win32_EncryptableVolume (run as administrator)")}
		}, StatusUnknown, "unknown", "access denied reading Win32_EncryptableVolume (run as administrator)"},

		// baseline swap-encrypted (Linux only).
		{"swap plain", "baseline", "linux", "swap-encrypted", func(f *wardv1.Facts) {
			v := swapVol(f)
			v.Device, v.Encrypted, v.Method, v.Protection, v.Conversion = "/dev/sda5", ptr(false), "", protOff, convNone
		}, StatusFail, "swap (/dev/sda5) is not encrypted", ""},
		{"swap encrypted", "baseline", "linux", "swap-encrypted", nil, StatusPass, "swap (/dev/dm-2) is encrypted (LUKS2)", ""},
		{"no swap, complete", "baseline", "linux", "swap-encrypted", func(f *wardv1.Facts) {
			f.DiskEncryption.Volumes = f.DiskEncryption.Volumes[:4]
		}, StatusPass, "no swap on disk", ""},
		{"no swap, partial", "baseline", "linux", "swap-encrypted", func(f *wardv1.Facts) {
			f.DiskEncryption.Volumes = f.DiskEncryption.Volumes[:4]
			f.DiskEncryption.Collection = coll(partialStatus, "cannot read /proc/swaps: permission denied")
		}, StatusUnknown, "", "swap could not be checked: cannot read /proc/swaps: permission denied"},
		{"swap unknown", "baseline", "linux", "swap-encrypted", func(f *wardv1.Facts) {
			swapVol(f).Encrypted = nil
		}, StatusUnknown, "", `the fact "encrypted" was not collected`},

		// baseline firewall-on.
		{"nft empty", "baseline", "linux", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.Enabled = ptr(false)
			for _, p := range f.Firewall.Profiles {
				p.Enabled, p.DefaultInbound = ptr(false), allow
			}
			f.Firewall.Summary = "Inbound traffic not filtered: nftables ruleset is empty"
		}, StatusFail, "the firewall does not filter incoming connections; incoming IPv4 connections NOT filtered; incoming IPv6 connections NOT filtered", ""},
		{"windows public off", "baseline", "windows", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.Enabled = ptr(false)
			f.Firewall.Profiles[2].Enabled = ptr(false)
			f.Firewall.Summary = "Domain on (inbound block), Private on (inbound block), Public off"
		}, StatusFail, "the firewall does not filter incoming connections; Domain profile on; Private profile on; Public profile off", ""},
		{"darwin alf off", "baseline", "darwin", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.Enabled = ptr(false)
			f.Firewall.Profiles[0].Enabled = ptr(false)
			f.Firewall.Summary = ""
		}, StatusFail, "the firewall does not filter incoming connections; application-firewall profile off", ""},
		{"darwin stealth only passes baseline", "baseline", "darwin", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.BlockAllIncoming = ptr(false)
			f.Firewall.Profiles[0].DefaultInbound = allow
		}, StatusPass, "", ""},
		{"firewall enabled unknown", "baseline", "linux", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.Enabled = nil
		}, StatusUnknown, "", `the fact "enabled" was not collected (firewall.enabled, firewall.profiles[].enabled)`},
		{"no profiles", "baseline", "windows", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.Profiles = nil
		}, StatusUnknown, "", "no firewall profile was reported"},
		{"profile state unknown", "baseline", "windows", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.Profiles[1].Enabled = nil
		}, StatusUnknown, "", `the fact "enabled" was not collected`},
		{"one profile off, another unknown", "baseline", "windows", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall.Profiles[1].Enabled = nil
			f.Firewall.Profiles[2].Enabled = ptr(false)
		}, StatusFail, "", ""},
		{"firewall unsupported", "baseline", "linux", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall = &wardv1.FirewallFacts{Collection: coll(unsupported, "no nftables or iptables on this system")}
		}, StatusUnknown, "unknown", "no nftables or iptables on this system"},
		{"firewall not collected", "baseline", "linux", "firewall-on", func(f *wardv1.Facts) {
			f.Firewall = nil
		}, StatusUnknown, "unknown", "this check did not run"},

		// baseline security-updates.
		{"apt pending, stale index", "baseline", "linux", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.PendingSecurityUpdates = ptr(int32(3))
			f.PatchLevel.MetadataRefreshedAt = timestamppb.New(testNow.Add(-64 * 24 * time.Hour))
		}, StatusFail, "security updates waiting to be installed: 3; list of available updates last refreshed on 2026-09-22", ""},
		{"apt nothing pending, stale index", "baseline", "linux", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.MetadataRefreshedAt = timestamppb.New(testNow.Add(-9 * 24 * time.Hour))
		}, StatusUnknown, "no security update waiting; list of available updates last refreshed on 2026-11-16",
			"the list of available updates was last refreshed on 2026-11-16, so it cannot show what is missing"},
		{"apt nothing pending, index 7 days", "baseline", "linux", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.MetadataRefreshedAt = timestamppb.New(testNow.Add(-7 * 24 * time.Hour))
		}, StatusPass, "no security update waiting; list of available updates last refreshed on 2026-11-18", ""},
		{"apt index time unknown", "baseline", "linux", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.MetadataRefreshedAt = nil
		}, StatusUnknown, "", `the fact "metadata_refreshed_at" was not collected (patch.metadata_refreshed_at)`},
		{"pending unknown", "baseline", "windows", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.PendingSecurityUpdates, f.PatchLevel.PendingUpdates = nil, nil
			f.PatchLevel.Collection = coll(partialStatus, "pending updates are unknown: the Windows Update search failed (it may need the network): 0x8024402C")
		}, StatusUnknown, "security updates waiting: not known",
			"pending updates are unknown: the Windows Update search failed (it may need the network): 0x8024402C; the fact \"pending_security_updates\" was not collected"},
		{"windows one pending", "baseline", "windows", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.PendingSecurityUpdates = ptr(int32(1))
		}, StatusFail, "security updates waiting to be installed: 1", ""},
		{"windows no index needed", "baseline", "windows", "security-updates", nil, StatusPass, "no security update waiting", ""},
		{"darwin pending", "baseline", "darwin", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.PendingSecurityUpdates = ptr(int32(2))
		}, StatusFail, "security updates waiting to be installed: 2; list of available updates last refreshed on 2026-11-24", ""},
		{"darwin index time unknown", "baseline", "darwin", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.MetadataRefreshedAt = nil
		}, StatusUnknown, "", `the fact "metadata_refreshed_at" was not collected`},
		{"patch collection failed", "baseline", "linux", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel = &wardv1.PatchFacts{Collection: coll(failedStatus, "apt-get is missing")}
		}, StatusUnknown, "unknown", "apt-get is missing"},

		// baseline OS support, judged by the made-up feed of testdata/feed.
		{"windows 10 22H2 pro ended", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Name, f.Os.Version, f.Os.DisplayVersion, f.Os.Build, f.Os.Edition = "Windows 10 Pro", "10.0.19045", "22H2", "19045.6575", "Professional"
		}, StatusFail, "Windows 10 22H2 (19045.6575), support ended on 2025-10-14; (release feed 202611200000, 5 days old)", ""},
		{"windows 10 22H2 enterprise ended", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.Build = "10.0.19045", "19045.6575"
		}, StatusFail, "", ""},
		{"windows 10 LTSC 2021 supported", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.Build, f.Os.Edition = "10.0.19044", "19044.6575", "EnterpriseS"
		}, StatusPass, "Windows 10 21H2 (19044.6575), supported until 2027-01-12; (release feed 202611200000, 5 days old)", ""},
		{"windows 11 24H2 pro ended", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Edition = "Professional"
		}, StatusFail, "", ""},
		{"windows 11 enterprise", "baseline", "windows", "os-supported-windows", nil, StatusPass,
			"Windows 11 24H2 (26100.7171), supported until 2027-10-12; (release feed 202611200000, 5 days old)", ""},
		{"windows newer than the feed", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.Build = "10.0.26300", "26300.1000"
		}, StatusPass, "Windows 26300.1000, newer than the release feed knows; (release feed 202611200000, 5 days old)", ""},
		{"windows edition unknown", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Edition = ""
		}, StatusUnknown, "", "the release feed does not know this system: the Windows edition is not known"},
		{"windows server", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Edition = "ServerStandard"
		}, StatusUnknown, "", `the Windows edition "ServerStandard" has no lifecycle in the feed`},
		{"windows build unknown", "baseline", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.Build = "", ""
		}, StatusUnknown, "", "the Windows build is not known"},
		{"macos 13 ended", "baseline", "darwin", "os-supported-macos", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion, f.Os.Build = "13.7.8", "13.7.8", "22H730"
		}, StatusFail, "macOS 13.7.8, support ended on 2025-09-15; (release feed 202611200000, 5 days old)", ""},
		{"macos 14 one behind", "baseline", "darwin", "os-supported-macos", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion = "14.8.2", "14.8.2"
		}, StatusPass, "macOS 14.8.2, supported until 2026-12-31; (release feed 202611200000, 5 days old)", ""},
		{"macos garbage version", "baseline", "darwin", "os-supported-macos", func(f *wardv1.Facts) {
			f.Os.Version = "fifteen"
		}, StatusUnknown, "", `macOS version "fifteen" is not a version`},
		{"debian 11 ended", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) { f.Os.Version = "11" },
			StatusFail, "debian 11, support ended on 2026-08-31; (release feed 202611200000, 5 days old)", ""},
		{"debian 12", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) { f.Os.Version = "12" }, StatusPass, "", ""},
		{"debian testing", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) { f.Os.Version = "" },
			StatusUnknown, "", `debian version "" is not a version`},
		{"ubuntu 20.04 on ESM", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Name, f.Os.Version = "ubuntu", "Ubuntu", "20.04"
		}, StatusFail, "ubuntu 20.04, standard support ended on 2025-05-29; Ubuntu Pro (ESM) runs until 2030-04-02, but Ward cannot tell whether it is enabled; (release feed 202611200000, 5 days old)", ""},
		{"ubuntu 22.04", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Name, f.Os.Version = "ubuntu", "Ubuntu", "22.04"
		}, StatusPass, "", ""},
		{"fedora 43", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Name, f.Os.Version = "fedora", "Fedora Linux", "43"
		}, StatusPass, "", ""},
		{"fedora 41, gone from the feed", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Name, f.Os.Version = "fedora", "Fedora Linux", "41"
		}, StatusUnknown, "", "the release feed has no line for this system: fedora 41"},
		{"rhel 9.4", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Name, f.Os.Version = "rhel", "Red Hat Enterprise Linux", "9.4"
		}, StatusPass, "", ""},
		{"arch", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Name, f.Os.Version = "arch", "Arch Linux", ""
		}, StatusUnknown, "", `the feed has no lines for the distribution "arch"`},
		{"distribution unknown", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Version = "", ""
		}, StatusUnknown, "", "the Linux distribution is not known"},
		{"os collection failed", "baseline", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Collection = coll(failedStatus, "cannot read /etc/os-release: no such file")
		}, StatusUnknown, "unknown", "cannot read /etc/os-release: no such file"},

		// baseline missed-security-releases: 30 days, 14 for an exploited flaw.
		{"windows up to date", "baseline", "windows", "missed-security-releases", nil, StatusPass, "no security release missing", ""},
		{"windows a month behind, exploited", "baseline", "windows", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Build = "26100.6899"
		}, StatusFail, "security releases missing: 26100.7171; fixing a flaw attackers are already using: 26100.7171", ""},
		{"windows missing one not exploited, 7 days", "baseline", "windows", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.Build = "10.0.26200", "26200.7171"
		}, StatusPass, "no security release missing", ""},
		{"windows ubr unknown", "baseline", "windows", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Build = ""
		}, StatusUnknown, "", "the Windows update build revision is not known"},
		{"macos a release behind, exploited", "baseline", "darwin", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion = "15.7.1", "15.7.1"
		}, StatusFail, "security releases missing: 15.7.2; fixing a flaw attackers are already using: 15.7.2", ""},
		{"macos up to date", "baseline", "darwin", "missed-security-releases", nil, StatusPass, "no security release missing", ""},
		{"macos newer than its line's newest", "baseline", "darwin", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion = "15.8", "15.8"
		}, StatusPass, "no security release missing", ""},

		// baseline os-support-ending: a warning within 90 days.
		{"macos 14 ends within 90 days", "baseline", "darwin", "os-support-ending", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion = "14.8.2", "14.8.2"
		}, StatusFail, "macOS 14.8.2, supported until 2026-12-31; (release feed 202611200000, 5 days old)", ""},
		{"macos 15 far from its end", "baseline", "darwin", "os-support-ending", nil, StatusPass, "", ""},
		{"windows LTSC ends within 90 days", "baseline", "windows", "os-support-ending", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.Build, f.Os.Edition = "10.0.19044", "19044.6575", "EnterpriseS"
		}, StatusFail, "", ""},
		{"fedora 43 ends within 90 days", "baseline", "linux", "os-support-ending", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Version = "fedora", "43"
		}, StatusFail, "", ""},
		{"debian 13 far from its end", "baseline", "linux", "os-support-ending", nil, StatusPass, "", ""},
		{"unknown distribution, warning unknown", "baseline", "linux", "os-support-ending", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Version = "arch", ""
		}, StatusUnknown, "", `the feed has no lines for the distribution "arch"`},

		// high-risk fixed-volumes-encrypted.
		{"boot and usb left out", "high-risk", "linux", "fixed-volumes-encrypted", nil, StatusPass,
			"/ (/dev/mapper/vg-root) is encrypted (LUKS2); swap (/dev/dm-2) is encrypted (LUKS2)", ""},
		{"windows data drive plain", "high-risk", "windows", "fixed-volumes-encrypted", func(f *wardv1.Facts) {
			v := f.DiskEncryption.Volumes[1]
			v.Encrypted, v.Method, v.Protection, v.Conversion, v.PercentEncrypted = ptr(false), "", protOff, convNone, ptr(0.0)
		}, StatusFail, "C: is encrypted (BitLocker XTS-AES 128); D: is not encrypted", ""},
		{"windows data drive plain passes baseline", "baseline", "windows", "disk-encrypted", func(f *wardv1.Facts) {
			v := f.DiskEncryption.Volumes[1]
			v.Encrypted, v.Protection, v.Conversion = ptr(false), protOff, convNone
		}, StatusPass, "C: is encrypted (BitLocker XTS-AES 128)", ""},
		{"linux swap plain", "high-risk", "linux", "fixed-volumes-encrypted", func(f *wardv1.Facts) {
			v := swapVol(f)
			v.Encrypted, v.Method, v.Protection, v.Conversion = ptr(false), "", protOff, convNone
		}, StatusFail, "", ""},
		{"partial never passes", "high-risk", "linux", "fixed-volumes-encrypted", func(f *wardv1.Facts) {
			f.DiskEncryption.Volumes = f.DiskEncryption.Volumes[:4]
			f.DiskEncryption.Collection = coll(partialStatus, "cannot read /proc/swaps: permission denied")
		}, StatusUnknown, "", "some disks could not be checked: cannot read /proc/swaps: permission denied"},
		{"partial with a plain volume fails", "high-risk", "linux", "fixed-volumes-encrypted", func(f *wardv1.Facts) {
			sysVol(f).Encrypted, sysVol(f).Protection, sysVol(f).Conversion = ptr(false), protOff, convNone
			f.DiskEncryption.Collection = coll(partialStatus, "cannot read /proc/swaps: permission denied")
		}, StatusFail, "", ""},
		{"darwin filevault on", "high-risk", "darwin", "fixed-volumes-encrypted", nil, StatusPass,
			"/System/Volumes/Data (disk3s5) is encrypted (FileVault)", ""},

		// high-risk firewall-blocks-inbound.
		{"windows public allows inbound", "high-risk", "windows", "firewall-blocks-inbound", func(f *wardv1.Facts) {
			f.Firewall.Profiles[2].DefaultInbound = allow
		}, StatusFail, "", ""},
		{"darwin stealth only", "high-risk", "darwin", "firewall-blocks-inbound", func(f *wardv1.Facts) {
			f.Firewall.BlockAllIncoming = ptr(false)
			f.Firewall.Profiles[0].DefaultInbound = allow
		}, StatusFail, "", ""},
		{"darwin block-all unknown", "high-risk", "darwin", "firewall-blocks-inbound", func(f *wardv1.Facts) {
			f.Firewall.BlockAllIncoming = nil
		}, StatusUnknown, "", `the fact "block_all_incoming" was not collected (firewall.block_all_incoming)`},
		{"linux accept policy", "high-risk", "linux", "firewall-blocks-inbound", func(f *wardv1.Facts) {
			f.Firewall.Profiles[1].DefaultInbound = allow
		}, StatusFail, "", ""},
		{"linux default action unknown", "high-risk", "linux", "firewall-blocks-inbound", func(f *wardv1.Facts) {
			f.Firewall.Profiles[1].DefaultInbound = 0
		}, StatusUnknown, "", `the fact "default_inbound" was not collected`},

		// high-risk no-reachable-services (allowed: udp/68, udp/546, udp/5353).
		{"only the dhcp client", "high-risk", "linux", "no-reachable-services", nil, StatusPass,
			"only allowed services are reachable: udp 0.0.0.0:68 reachable from anywhere", ""},
		{"nothing reachable", "high-risk", "windows", "no-reachable-services", nil, StatusPass,
			"no service is reachable from the network", ""},
		{"bonjour with block-all", "high-risk", "darwin", "no-reachable-services", nil, StatusPass,
			"only allowed services are reachable: udp 0.0.0.0:5353 reachable from anywhere; udp [::]:5353 reachable from anywhere", ""},
		{"ssh reachable", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable = append(f.Firewall.Reachable, service("tcp", "0.0.0.0", 22, false, "any"))
		}, StatusFail, "tcp 0.0.0.0:22 reachable from anywhere", ""},
		{"file sharing and remote desktop", "high-risk", "windows", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable = []*wardv1.ReachableService{
				service("tcp", "0.0.0.0", 445, false, "any"),
				service("udp", "::", 5353, false, "any"),
				service("tcp", "::", 3389, false, "10.0.0.0/8, 192.168.0.0/16"),
			}
		}, StatusFail, "tcp 0.0.0.0:445 reachable from anywhere; tcp [::]:3389 reachable from 10.0.0.0/8, 192.168.0.0/16", ""},
		{"uncertain and not allowed", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable = append(f.Firewall.Reachable, service("tcp", "0.0.0.0", 8080, true, "any"))
		}, StatusUnknown, "tcp 0.0.0.0:8080 may be reachable from anywhere",
			"cannot tell whether the firewall lets these in: tcp 0.0.0.0:8080 may be reachable from any"},
		{"uncertain and allowed", "high-risk", "darwin", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable[0].Uncertain = true
		}, StatusPass, "only allowed services are reachable: udp 0.0.0.0:5353 may be reachable from anywhere; udp [::]:5353 reachable from anywhere", ""},
		{"uncertain and certain, not allowed", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable = append(f.Firewall.Reachable,
				service("tcp", "0.0.0.0", 8080, true, "any"), service("tcp", "192.168.1.20", 631, false, "192.168.1.0/24"))
		}, StatusFail, "tcp 0.0.0.0:8080 may be reachable from anywhere; tcp 192.168.1.20:631 reachable from 192.168.1.0/24", ""},
		{"tcp6 named like netstat", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable = append(f.Firewall.Reachable, service("udp6", "::", 546, false, "fe80::/10"))
		}, StatusPass, "", ""},
		{"services not read", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.ServicesCollection = nil
		}, StatusUnknown, "listening services not checked", "the services listening on this laptop were not checked"},
		{"services status unspecified", "high-risk", "windows", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.ServicesCollection = coll(0, "")
		}, StatusUnknown, "listening services not checked", "the services listening on this laptop were not checked"},
		{"services failed, a service listed anyway", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.ServicesCollection = coll(failedStatus, "cannot read /proc/net/tcp: permission denied")
			f.Firewall.Reachable = append(f.Firewall.Reachable, service("tcp", "0.0.0.0", 22, false, "any"))
		}, StatusUnknown, "listening services not checked",
			"the services listening on this laptop could not be checked: cannot read /proc/net/tcp: permission denied"},
		{"services unsupported without reason", "high-risk", "darwin", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.ServicesCollection = coll(unsupported, "")
		}, StatusUnknown, "", "the services listening on this laptop could not be checked"},
		{"services partial, nothing bad seen", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.ServicesCollection = coll(partialStatus, "cannot read /proc/net/udp6")
		}, StatusUnknown, "", "some listening services could not be checked: cannot read /proc/net/udp6"},
		{"services partial, ssh seen", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.ServicesCollection = coll(partialStatus, "cannot read /proc/net/udp6")
			f.Firewall.Reachable = append(f.Firewall.Reachable, service("tcp", "0.0.0.0", 22, false, "any"))
		}, StatusFail, "tcp 0.0.0.0:22 reachable from anywhere", ""},
		{"firewall partly read", "high-risk", "windows", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Collection = coll(partialStatus, "cannot read the inbound rules of the Public profile")
		}, StatusUnknown, "", "cannot read the inbound rules of the Public profile; the firewall rules were only partly read"},
		{"firewall not read", "high-risk", "windows", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Collection = coll(failedStatus, "Get-NetFirewallProfile timed out")
		}, StatusUnknown, "unknown", "Get-NetFirewallProfile timed out"},
		{"service without port", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable = append(f.Firewall.Reachable, service("tcp", "0.0.0.0", 0, false, "any"))
		}, StatusUnknown, "", `the reachable tcp service on "0.0.0.0" has no port`},
		{"service without port, another not allowed", "high-risk", "linux", "no-reachable-services", func(f *wardv1.Facts) {
			f.Firewall.Reachable = append(f.Firewall.Reachable,
				service("", "0.0.0.0", 0, false, "any"), service("tcp", "0.0.0.0", 22, false, "any"))
		}, StatusFail, "", ""},

		// high-risk security-updates: index older than 4 days.
		{"apt index 5 days", "high-risk", "linux", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.MetadataRefreshedAt = timestamppb.New(testNow.Add(-5 * 24 * time.Hour))
		}, StatusUnknown, "", "the list of available updates was last refreshed on 2026-11-20, so it cannot show what is missing"},
		{"apt pending", "high-risk", "linux", "security-updates", func(f *wardv1.Facts) {
			f.PatchLevel.PendingSecurityUpdates = ptr(int32(12))
		}, StatusFail, "security updates waiting to be installed: 12; list of available updates last refreshed on 2026-11-24", ""},

		// high-risk restart-after-updates.
		{"windows restart pending", "high-risk", "windows", "restart-after-updates", func(f *wardv1.Facts) {
			f.PatchLevel.RebootRequired = ptr(true)
		}, StatusFail, "a restart is waiting to finish installing updates", ""},
		{"windows no restart", "high-risk", "windows", "restart-after-updates", nil, StatusPass, "no restart waiting", ""},
		{"darwin restart pending", "high-risk", "darwin", "restart-after-updates", func(f *wardv1.Facts) {
			f.PatchLevel.RebootRequired = ptr(true)
		}, StatusFail, "a restart is waiting to finish installing updates", ""},
		{"darwin nothing listed", "high-risk", "darwin", "restart-after-updates", nil, StatusPass, "", ""},
		{"darwin updates listed, none needing a restart", "high-risk", "darwin", "restart-after-updates", func(f *wardv1.Facts) {
			f.PatchLevel.PendingSecurityUpdates = ptr(int32(1))
		}, StatusUnknown, "", "whether a restart is waiting to finish installing updates could not be checked"},
		{"darwin listing failed", "high-risk", "darwin", "restart-after-updates", func(f *wardv1.Facts) {
			f.PatchLevel.PendingSecurityUpdates, f.PatchLevel.PendingUpdates = nil, nil
			f.PatchLevel.Collection = coll(partialStatus, "cannot list pending updates: softwareupdate: no network")
		}, StatusUnknown, "", "cannot list pending updates: softwareupdate: no network"},
		{"linux restart unknown", "high-risk", "linux", "restart-after-updates", func(f *wardv1.Facts) {
			f.PatchLevel.RebootRequired = nil
		}, StatusUnknown, "no security update waiting; list of available updates last refreshed on 2026-11-24", `the fact "reboot_required" was not collected`},

		// high-risk automatic-updates.
		{"windows au off", "high-risk", "windows", "automatic-updates", func(f *wardv1.Facts) {
			f.PatchLevel.AutomaticUpdates = ptr(false)
		}, StatusFail, "automatic updates are off", ""},
		{"darwin au on", "high-risk", "darwin", "automatic-updates", nil, StatusPass, "automatic updates are on", ""},
		{"linux au unknown", "high-risk", "linux", "automatic-updates", func(f *wardv1.Facts) {
			f.PatchLevel.AutomaticUpdates = nil
		}, StatusUnknown, "", `the fact "automatic_updates" was not collected`},

		// high-risk OS support and security releases: 14 days, 3 when exploited.
		{"windows 11 24H2 pro ended, high-risk", "high-risk", "windows", "os-supported-windows", func(f *wardv1.Facts) {
			f.Os.Edition = "Professional"
		}, StatusFail, "", ""},
		{"macos 14 high-risk", "high-risk", "darwin", "os-supported-macos", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion = "14.8.2", "14.8.2"
		}, StatusPass, "", ""},
		{"debian 12 high-risk", "high-risk", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Version = "12"
		}, StatusPass, "", ""},
		{"ubuntu 20.04 high-risk", "high-risk", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Version = "ubuntu", "20.04"
		}, StatusFail, "", ""},
		{"unknown distro high-risk", "high-risk", "linux", "os-supported-linux", func(f *wardv1.Facts) {
			f.Os.Id, f.Os.Version = "arch", ""
		}, StatusUnknown, "", `the feed has no lines for the distribution "arch"`},
		{"windows a month behind, high-risk", "high-risk", "windows", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Build = "26100.6899"
		}, StatusFail, "", ""},
		{"windows missing one not exploited, 7 days, high-risk", "high-risk", "windows", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.Build = "10.0.26200", "26200.7171"
		}, StatusPass, "no security release missing", ""},
		{"macos 14 a release behind, high-risk", "high-risk", "darwin", "missed-security-releases", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion = "14.8.1", "14.8.1"
		}, StatusFail, "security releases missing: 14.8.2; fixing a flaw attackers are already using: 14.8.2", ""},
		{"macos 14 ends within 90 days, high-risk", "high-risk", "darwin", "os-support-ending", func(f *wardv1.Facts) {
			f.Os.Version, f.Os.DisplayVersion = "14.8.2", "14.8.2"
		}, StatusFail, "", ""},
	}
	policies := map[string]*Policy{}
	for _, name := range Names() {
		policies[name] = mustEmbedded(t, name)
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.platform+"/"+tt.rule+"/"+tt.name, func(t *testing.T) {
			f := compliantFacts(tt.platform)
			if tt.mutate != nil {
				tt.mutate(f)
			}
			got, ok := resultFor(Evaluate(context.Background(), policies[tt.policy], f, Options{Now: testNow, Feed: testFeedInput}), tt.rule)
			if !ok {
				t.Fatalf("rule %s not in the results", tt.rule)
			}
			if got.Status != tt.want {
				t.Errorf("status = %s (reason %q, observed %q), want %s", got.Status, got.Reason, got.Observed, tt.want)
			}
			if tt.observed != "" && got.Observed != tt.observed {
				t.Errorf("observed = %q, want %q", got.Observed, tt.observed)
			}
			if tt.reason != "" && !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", got.Reason, tt.reason)
			}
			if (tt.want == StatusUnknown) != (got.Reason != "") {
				t.Errorf("reason = %q for status %s: only UNKNOWN has a reason", got.Reason, got.Status)
			}
			if (got.Status == StatusFail) != (got.Deadline != nil) {
				t.Errorf("deadline = %v for status %s: only FAIL has a deadline", got.Deadline, got.Status)
			}
		})
	}
}

func TestRulesLeftOutByPlatform(t *testing.T) {
	p := mustEmbedded(t, "high-risk")
	results := Evaluate(context.Background(), p, darwinFacts(), Options{Now: testNow, Feed: testFeedInput})
	for _, id := range []string{"os-supported-windows", "os-supported-linux"} {
		if _, ok := resultFor(results, id); ok {
			t.Errorf("rule %s reported on darwin", id)
		}
	}
	if _, ok := resultFor(Evaluate(context.Background(), mustEmbedded(t, "baseline"), windowsFacts(), Options{Now: testNow, Feed: testFeedInput}), "swap-encrypted"); ok {
		t.Error("swap-encrypted reported on windows")
	}
}

func TestUnknownPlatform(t *testing.T) {
	f := linuxFacts()
	f.Os = &wardv1.OSFacts{Collection: coll(failedStatus, "cannot tell which platform this is: host lookup failed")}
	p := mustEmbedded(t, "baseline")
	results := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	if len(results) != len(p.Rules) {
		t.Fatalf("%d results, want one per rule (%d)", len(results), len(p.Rules))
	}
	for _, r := range results {
		if r.Status != StatusUnknown || r.Reason != "cannot tell which platform this device runs: cannot tell which platform this is: host lookup failed" {
			t.Errorf("%s: %s %q", r.RuleID, r.Status, r.Reason)
		}
	}
	if got := Evaluate(context.Background(), p, nil, Options{Now: testNow, Feed: testFeedInput}); len(got) != len(p.Rules) || got[0].Status != StatusUnknown {
		t.Errorf("Evaluate(context.Background(), nil facts) = %+v", got)
	}
}

func TestCollectionStatuses(t *testing.T) {
	p := mustEmbedded(t, "baseline")
	tests := []struct {
		name   string
		coll   *wardv1.Collection
		nilFam bool
		want   Status
		reason string
	}{
		{"ok", statusOK(), false, StatusPass, ""},
		{"partial, rule can decide", coll(partialStatus, "swap: cannot tell"), false, StatusPass, ""},
		{"failed", coll(failedStatus, "fdesetup timed out after 10s"), false, StatusUnknown, "fdesetup timed out after 10s"},
		{"failed without reason", coll(failedStatus, ""), false, StatusUnknown, "this check failed without saying why"},
		{"unsupported", coll(unsupported, "no BitLocker on Windows Home"), false, StatusUnknown, "no BitLocker on Windows Home"},
		{"unspecified", coll(0, ""), false, StatusUnknown, "the state of this check is not known"},
		{"nil collection", nil, false, StatusUnknown, "this check did not run"},
		{"nil family", nil, true, StatusUnknown, "this check did not run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := windowsFacts()
			f.DiskEncryption.Collection = tt.coll
			if tt.nilFam {
				f.DiskEncryption = nil
			}
			got, _ := resultFor(Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput}), "disk-encrypted")
			if got.Status != tt.want || got.Reason != tt.reason {
				t.Errorf("got %s %q, want %s %q", got.Status, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestGrace(t *testing.T) {
	// security-updates: grace 14d connected, wall-clock here (connected
	// grace: TestConnectedGrace).
	p := mustEmbedded(t, "baseline")
	p.Rules[slices.IndexFunc(p.Rules, func(r Rule) bool { return r.ID == "security-updates" })].GraceConnected = false
	f := linuxFacts()
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(2))
	day := 24 * time.Hour
	tests := []struct {
		name     string
		since    map[string]time.Time
		wantFrom time.Time
		overdue  bool
	}{
		{"first seen now", nil, testNow, false},
		{"10 days ago", map[string]time.Time{"security-updates": testNow.Add(-10 * day)}, testNow.Add(-10 * day), false},
		{"exactly at the deadline", map[string]time.Time{"security-updates": testNow.Add(-14 * day)}, testNow.Add(-14 * day), false},
		{"20 days ago", map[string]time.Time{"security-updates": testNow.Add(-20 * day)}, testNow.Add(-20 * day), true},
		{"other rule only", map[string]time.Time{"firewall-on": testNow.Add(-20 * day)}, testNow, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := resultFor(Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput, FailingSince: tt.since}), "security-updates")
			if got.Status != StatusFail || got.FailingSince == nil || got.Deadline == nil {
				t.Fatalf("got %+v, want a FAIL with a deadline", got)
			}
			if !got.FailingSince.Equal(tt.wantFrom) || !got.Deadline.Equal(tt.wantFrom.Add(14*day)) || got.Overdue != tt.overdue {
				t.Errorf("failing since %v, deadline %v, overdue %v; want %v, %v, %v",
					got.FailingSince, got.Deadline, got.Overdue, tt.wantFrom, tt.wantFrom.Add(14*day), tt.overdue)
			}
		})
	}
	// A passing or unknown rule has no failing_since, deadline or overdue,
	// even when the device failed it before.
	since := map[string]time.Time{"security-updates": testNow.Add(-30 * day)}
	for _, mut := range []func(*wardv1.Facts){
		func(f *wardv1.Facts) {},
		func(f *wardv1.Facts) { f.PatchLevel.PendingSecurityUpdates = nil },
	} {
		f := linuxFacts()
		mut(f)
		got, _ := resultFor(Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput, FailingSince: since}), "security-updates")
		if got.FailingSince != nil || got.Deadline != nil || got.Overdue {
			t.Errorf("%s result carries failing since %v, deadline %v, overdue %v", got.Status, got.FailingSince, got.Deadline, got.Overdue)
		}
	}
}

func TestResultJSON(t *testing.T) {
	f := windowsFacts()
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(1))
	got, _ := resultFor(Evaluate(context.Background(), mustEmbedded(t, "baseline"), f, Options{Now: testNow, Feed: testFeedInput}), "security-updates")
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rule_id":"security-updates","title":"Security updates are installed","family":"patch_level","status":"FAIL",` +
		`"severity":"high","observed":"security updates waiting to be installed: 1","expected":"No security update has been waiting for more than 14 days.",` +
		`"remediation":"Open Settings, then Windows Update, click \"Check for updates\" and install what is offered. Restart when asked. A good moment is the end of your working day, on a trusted network.",` +
		`"observed_text":[{"id":"patch.security_pending","params":{"count":"1"}}],` +
		`"failing_since":"2026-11-25T12:00:00Z","deadline":"2026-12-09T12:00:00Z","grace_connected":true}`
	if string(b) != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", b, want)
	}
}

func TestLanguage(t *testing.T) {
	p := mustEmbedded(t, "baseline")
	tests := []struct {
		lang, title, remediationPrefix string
	}{
		{"", "The firewall is on", "Open System Settings"},
		{"en", "The firewall is on", "Open System Settings"},
		{"fr", "Le pare-feu est activé", "Ouvrez Réglages Système"},
		{"fr-CA", "Le pare-feu est activé", "Ouvrez Réglages Système"},
		{"FR_be", "Le pare-feu est activé", "Ouvrez Réglages Système"},
		{"de", "The firewall is on", "Open System Settings"},
		{"!!", "The firewall is on", "Open System Settings"},
	}
	for _, tt := range tests {
		got, _ := resultFor(Evaluate(context.Background(), p, darwinFacts(), Options{Now: testNow, Feed: testFeedInput, Lang: tt.lang}), "firewall-on")
		if got.Title != tt.title || !strings.HasPrefix(got.Remediation, tt.remediationPrefix) {
			t.Errorf("lang %q: title %q, remediation %q", tt.lang, got.Title, got.Remediation)
		}
	}
	// A text missing in one language falls back to English per field.
	doc := `name: partial-fr
version: 1
rules:
  - id: fw
    title: { en: Firewall on, fr: Pare-feu activé }
    family: firewall
    platforms: [linux]
    require: firewall.enabled
    expected: The firewall is on.
    severity: low
    remediation:
      en: { linux: Turn it on. }
`
	q, err := Parse("partial-fr.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got := Evaluate(context.Background(), q, linuxFacts(), Options{Now: testNow, Feed: testFeedInput, Lang: "fr"})[0]
	if got.Title != "Pare-feu activé" || got.Expected != "The firewall is on." || got.Remediation != "Turn it on." {
		t.Errorf("fallback gave %+v", got)
	}
}

// TestWhenAndTypes covers the when guard and results that are not booleans.
func TestWhenAndTypes(t *testing.T) {
	doc := `name: guards
version: 1
rules:
  - id: only-debian
    title: Only on Debian
    family: os
    platforms: [linux]
    when: os.id == "debian"
    require: 'true'
    expected: x
    severity: low
    remediation: { en: { linux: x } }
  - id: only-fedora
    title: Only on Fedora
    family: os
    platforms: [linux]
    when: os.id == "fedora"
    require: 'true'
    expected: x
    severity: low
    remediation: { en: { linux: x } }
  - id: guard-unknown
    title: Guard reads a missing fact
    family: os
    platforms: [linux]
    when: patch.reboot_required
    require: 'true'
    expected: x
    severity: low
    remediation: { en: { linux: x } }
  - id: not-bool
    title: Dyn result that is a string
    family: os
    platforms: [linux]
    require: os.name
    expected: x
    severity: low
    remediation: { en: { linux: x } }
  - id: observed-error
    title: Observed expression that fails falls back
    family: os
    platforms: [linux]
    require: 'false'
    observed: os.nope
    expected: x
    severity: low
    remediation: { en: { linux: x } }
  - id: days
    title: days() counts whole days
    family: patch_level
    platforms: [linux]
    require: days(now - patch.metadata_refreshed_at) == 0 && days(duration("49h")) == 2
    expected: x
    severity: low
    remediation: { en: { linux: x } }
`
	p, err := Parse("guards.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f := linuxFacts()
	f.PatchLevel.RebootRequired = nil
	results := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	want := map[string]Status{"only-debian": StatusPass, "guard-unknown": StatusUnknown, "not-bool": StatusUnknown,
		"observed-error": StatusFail, "days": StatusPass}
	if len(results) != len(want) {
		t.Errorf("%d results, want %d: %+v", len(results), len(want), results)
	}
	for id, st := range want {
		got, ok := resultFor(results, id)
		if !ok || got.Status != st {
			t.Errorf("%s: %s (%q), want %s", id, got.Status, got.Reason, st)
		}
	}
	if r, _ := resultFor(results, "guard-unknown"); !strings.HasPrefix(r.Reason, "cannot tell whether the rule applies: the fact \"reboot_required\"") {
		t.Errorf("guard-unknown reason %q", r.Reason)
	}
	if r, _ := resultFor(results, "not-bool"); r.Reason != "the expression gave string, not true or false" {
		t.Errorf("not-bool reason %q", r.Reason)
	}
	if r, _ := resultFor(results, "observed-error"); r.Observed != "Debian GNU/Linux 13" {
		t.Errorf("observed-error observed %q", r.Observed)
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		v, min  string
		want    bool
		wantErr bool
	}{
		{"10.0.22631", "10.0.19045", true, false},
		{"10.0.19045", "10.0.19045", true, false},
		{"10.0.19044", "10.0.19045", false, false},
		{"14.6.1", "14", true, false},
		{"14", "14.0.0", true, false},
		{"13.7", "14", false, false},
		{"22.04", "22.04", true, false},
		{"20.04", "22.04", false, false},
		{"9.10", "9.6", true, false},
		{"9.4", "9.6", false, false},
		{"", "12", false, true},
		{"12", "", false, true},
		{"14.6.1 (a)", "14", false, true},
		{"12.", "12", false, true},
		{"v12", "12", false, true},
		{"-1", "1", false, true},
		{"1234567890", "1", false, true},
	}
	for _, tt := range tests {
		got, err := versionAtLeast(tt.v, tt.min)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("versionAtLeast(%q, %q) = %v, %v; want %v, error %v", tt.v, tt.min, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMessageMap(t *testing.T) {
	f := linuxFacts()
	f.DiskEncryption.Volumes[0].Protection = 0
	m := messageMap(f.DiskEncryption)
	if m["collection"].(map[string]any)["status"] != "ok" {
		t.Errorf("collection = %v", m["collection"])
	}
	if _, ok := m["hardware_encrypted"]; ok {
		t.Error("unset optional hardware_encrypted is present")
	}
	vols := m["volumes"].([]any)
	root := vols[0].(map[string]any)
	if _, ok := root["protection"]; ok {
		t.Error("PROTECTION_UNSPECIFIED is present")
	}
	if root["conversion"] != "fully_encrypted" || root["encrypted"] != true || root["system"] != true ||
		root["removable"] != false || root["reason"] != "" {
		t.Errorf("root volume map = %v", root)
	}
	if _, ok := root["percent_encrypted"]; ok {
		t.Error("unset percent_encrypted is present")
	}
	p := messageMap(f.PatchLevel)
	if p["pending_security_updates"] != int64(0) || p["pending"] == nil || len(p["pending"].([]any)) != 0 {
		t.Errorf("patch map = %v", p)
	}
	if ts, ok := p["metadata_refreshed_at"].(time.Time); !ok || !ts.Equal(testNow.Add(-20*time.Hour)) {
		t.Errorf("metadata_refreshed_at = %v", p["metadata_refreshed_at"])
	}
	if _, ok := messageMap(&wardv1.PatchFacts{})["last_update_installed_at"]; ok {
		t.Error("unset timestamp is present")
	}
	fw := messageMap(windowsFacts().Firewall)
	if fw["profiles"].([]any)[0].(map[string]any)["default_inbound"] != "block" {
		t.Errorf("firewall map = %v", fw)
	}
	if len(messageMap(nil)) != 0 {
		t.Error("nil message gives keys")
	}
}

func TestCostLimit(t *testing.T) {
	doc := `name: costly
version: 1
rules:
  - id: loops
    title: Too much work
    family: os
    platforms: [linux]
    require: >-
      [0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9].all(a,
        [0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9].all(b,
          [0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9].all(c,
            [0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9].all(d, a + b + c + d >= 0))))
    expected: x
    severity: low
    remediation: { en: { linux: x } }
`
	// Refused when loaded, at the expression's first line, rather than
	// left to run out of budget on every device.
	_, err := Parse("costly.yaml", []byte(doc))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 {
		t.Fatalf("Parse = %v, want one problem", err)
	}
	if pr := ve.Problems[0]; pr.Line != 9 || !strings.Contains(pr.Reason, `rule "loops": require can cost up to`) ||
		!strings.Contains(pr.Reason, "more than the 1000000 units one expression may") {
		t.Errorf("problem = %s", pr)
	}
}
