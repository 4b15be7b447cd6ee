package policies

import (
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Facts built in Go for the evaluation tests. Each platform's compliant set
// passes every rule of both shipped policies, judged by the made-up feed of
// testdata/feed at testNow (testFeedInput); cases mutate a clone.

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func statusOK() *wardv1.Collection {
	return &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
}

const (
	protOn        = wardv1.Protection_PROTECTION_ON
	protOff       = wardv1.Protection_PROTECTION_OFF
	protSuspended = wardv1.Protection_PROTECTION_SUSPENDED
	convFull      = wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED
	convNone      = wardv1.Conversion_CONVERSION_FULLY_DECRYPTED
	convEncrypt   = wardv1.Conversion_CONVERSION_ENCRYPTING
	convDecrypt   = wardv1.Conversion_CONVERSION_DECRYPTING
	block         = wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
	allow         = wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
)

func windowsFacts() *wardv1.Facts {
	return &wardv1.Facts{
		CollectedAt: timestamppb.New(testNow),
		Os: &wardv1.OSFacts{Collection: statusOK(), Platform: "windows", Name: "Windows 11 Enterprise",
			Version: "10.0.26100", DisplayVersion: "24H2", Build: "26100.7171", Edition: "Enterprise", Architecture: "amd64"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: statusOK(), Volumes: []*wardv1.Volume{
			{MountPoint: "C:", Device: `\\?\Volume{3c8b8e52-0000-0000-0000-100000000000}\`, System: true,
				Encrypted: ptr(true), Method: "BitLocker XTS-AES 128", Protection: protOn, Conversion: convFull,
				PercentEncrypted: ptr(100.0), KeyProtectors: []string{"TPM", "RecoveryPassword"}},
			{MountPoint: "D:", Device: `\\?\Volume{5d1c0a11-0000-0000-0000-501f00000000}\`,
				Encrypted: ptr(true), Method: "BitLocker XTS-AES 128", Protection: protOn, Conversion: convFull,
				PercentEncrypted: ptr(100.0), KeyProtectors: []string{"ExternalKey"}},
		}},
		PatchLevel: &wardv1.PatchFacts{Collection: statusOK(), Manager: "windows-update",
			PendingUpdates: ptr(int32(0)), PendingSecurityUpdates: ptr(int32(0)),
			LastUpdateInstalledAt: timestamppb.New(testNow.Add(-5 * 24 * time.Hour)),
			RebootRequired:        ptr(false), AutomaticUpdates: ptr(true)},
		Firewall: &wardv1.FirewallFacts{Collection: statusOK(), Enabled: ptr(true), Backend: "windows-firewall",
			Profiles: []*wardv1.FirewallProfile{
				{Name: "Domain", Enabled: ptr(true), DefaultInbound: block},
				{Name: "Private", Enabled: ptr(true), DefaultInbound: block},
				{Name: "Public", Enabled: ptr(true), DefaultInbound: block},
			},
			Summary:            "Domain on (inbound block), Private on (inbound block), Public on (inbound block)",
			ServicesCollection: statusOK()},
	}
}

func darwinFacts() *wardv1.Facts {
	return &wardv1.Facts{
		CollectedAt: timestamppb.New(testNow),
		Os: &wardv1.OSFacts{Collection: statusOK(), Platform: "darwin", Name: "macOS",
			Version: "15.7.2", DisplayVersion: "15.7.2", Build: "24G325", Kernel: "24.6.0", Architecture: "arm64"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: statusOK(), HardwareEncrypted: ptr(true),
			Volumes: []*wardv1.Volume{
				{MountPoint: "/System/Volumes/Data", Device: "disk3s5", System: true, Encrypted: ptr(true),
					Method: "FileVault", Protection: protOn, Conversion: convFull,
					KeyProtectors: []string{"PersonalRecoveryKey"}},
			}},
		// softwareupdate reports no pending restart (RebootRequired unset).
		PatchLevel: &wardv1.PatchFacts{Collection: statusOK(), Manager: "softwareupdate",
			PendingUpdates: ptr(int32(0)), PendingSecurityUpdates: ptr(int32(0)),
			LastUpdateInstalledAt: timestamppb.New(testNow.Add(-10 * 24 * time.Hour)),
			MetadataRefreshedAt:   timestamppb.New(testNow.Add(-26 * time.Hour)),
			AutomaticUpdates:      ptr(true)},
		Firewall: &wardv1.FirewallFacts{Collection: statusOK(), Enabled: ptr(true), Backend: "alf",
			Profiles: []*wardv1.FirewallProfile{
				{Name: "application-firewall", Enabled: ptr(true), DefaultInbound: block},
			},
			BlockAllIncoming: ptr(true), Stealth: ptr(true),
			Summary: "Application Firewall on (state 2); block all incoming: on; stealth mode: on",
			// Block-all still lets Bonjour in (allowed by high-risk).
			Reachable: []*wardv1.ReachableService{
				{Protocol: "udp", Address: "0.0.0.0", Port: 5353, Family: "ipv4", Sources: "any"},
				{Protocol: "udp", Address: "::", Port: 5353, Family: "ipv6", Sources: "any"},
			},
			ServicesCollection: statusOK()},
	}
}

func linuxFacts() *wardv1.Facts {
	return &wardv1.Facts{
		CollectedAt: timestamppb.New(testNow),
		Os: &wardv1.OSFacts{Collection: statusOK(), Platform: "linux", Name: "Debian GNU/Linux", Id: "debian",
			Version: "13", Build: "13 (trixie)", Kernel: "6.12.57+deb13-amd64", Architecture: "amd64"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: statusOK(), Volumes: []*wardv1.Volume{
			{MountPoint: "/", Device: "/dev/mapper/vg-root", System: true, Encrypted: ptr(true), Method: "LUKS2",
				Protection: protOn, Conversion: convFull, Chain: "dm-1 (LVM) > dm-0 (CRYPT-LUKS2) > nvme0n1p3"},
			{MountPoint: "/boot", Device: "/dev/nvme0n1p2", Encrypted: ptr(false), Protection: protOff,
				Conversion: convNone, Chain: "nvme0n1p2",
				Reason: "boot partition: usually left unencrypted so firmware and boot loader can read it"},
			{MountPoint: "/boot/efi", Device: "/dev/nvme0n1p1", Encrypted: ptr(false), Protection: protOff,
				Conversion: convNone, Chain: "nvme0n1p1",
				Reason: "boot partition: usually left unencrypted so firmware and boot loader can read it"},
			{MountPoint: "/media/staff/USB", Device: "/dev/sdb1", Removable: true, Encrypted: ptr(false),
				Protection: protOff, Conversion: convNone, Chain: "sdb1"},
			{MountPoint: "swap", Device: "/dev/dm-2", Swap: true, Encrypted: ptr(true), Method: "LUKS2",
				Protection: protOn, Conversion: convFull, Chain: "dm-2 (LVM) > dm-0 (CRYPT-LUKS2) > nvme0n1p3"},
		}},
		PatchLevel: &wardv1.PatchFacts{Collection: statusOK(), Manager: "apt",
			PendingUpdates: ptr(int32(4)), PendingSecurityUpdates: ptr(int32(0)),
			LastUpdateInstalledAt: timestamppb.New(testNow.Add(-2 * 24 * time.Hour)),
			MetadataRefreshedAt:   timestamppb.New(testNow.Add(-20 * time.Hour)),
			RebootRequired:        ptr(false), AutomaticUpdates: ptr(true)},
		Firewall: &wardv1.FirewallFacts{Collection: statusOK(), Enabled: ptr(true), Backend: "nftables",
			Profiles: []*wardv1.FirewallProfile{
				{Name: "ipv4", Enabled: ptr(true), DefaultInbound: block},
				{Name: "ipv6", Enabled: ptr(true), DefaultInbound: block},
			},
			Summary: "Inbound traffic is filtered (IPv4: policy drop; IPv6: policy drop).",
			// The DHCP client (allowed by high-risk).
			Reachable: []*wardv1.ReachableService{
				{Protocol: "udp", Address: "0.0.0.0", Port: 68, Family: "ipv4", Sources: "any"},
			},
			ServicesCollection: statusOK()},
	}
}

func compliantFacts(platform string) *wardv1.Facts {
	switch platform {
	case "windows":
		return windowsFacts()
	case "darwin":
		return darwinFacts()
	}
	return linuxFacts()
}

func clone(f *wardv1.Facts) *wardv1.Facts { return proto.Clone(f).(*wardv1.Facts) }

func service(proto, addr string, port uint32, uncertain bool, sources string) *wardv1.ReachableService {
	family := "ipv4"
	if strings.Contains(addr, ":") {
		family = "ipv6"
	}
	return &wardv1.ReachableService{Protocol: proto, Address: addr, Port: port, Family: family, Uncertain: uncertain, Sources: sources}
}

func coll(status wardv1.CollectionStatus, reason string) *wardv1.Collection {
	return &wardv1.Collection{Status: status, Reason: reason}
}
