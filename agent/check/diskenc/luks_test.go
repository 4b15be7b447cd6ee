package diskenc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestCollectLinuxSysfs runs the collector over fixture trees through the
// live file reader (source.Live with Root), so the real ReadFile/ReadDir/
// Stat paths are exercised.
func TestCollectLinuxSysfs(t *testing.T) {
	type vol struct {
		mount     string
		encrypted *bool
		method    string
		chain     string
		removable bool
	}
	tr, fa := new(true), new(false)
	tests := []struct {
		name   string
		status wardv1.CollectionStatus
		vols   []vol
	}{
		{"sandbox-vda-plain", wardv1.CollectionStatus_COLLECTION_STATUS_OK, []vol{
			{"/", fa, "", "vda", false}}},
		{"luks2-lvm-ext4-swaplv", wardv1.CollectionStatus_COLLECTION_STATUS_OK, []vol{
			{"/", tr, "LUKS2", "dm-1 (LVM) > dm-0 (CRYPT-LUKS2) > nvme0n1p3", false},
			{"/boot", fa, "", "nvme0n1p2", false},
			{"/boot/efi", fa, "", "nvme0n1p1", false},
			{"swap", tr, "LUKS2", "dm-2 (LVM) > dm-0 (CRYPT-LUKS2) > nvme0n1p3", false}}},
		{"luks1-partition-plainswap", wardv1.CollectionStatus_COLLECTION_STATUS_OK, []vol{
			{"/", tr, "LUKS1", "dm-0 (CRYPT-LUKS1) > sda2", false},
			{"/boot", fa, "", "sda1", false},
			{"swap", tr, "PLAIN", "dm-1 (CRYPT-PLAIN) > sda3", false}}},
		{"plain-root-swap-usb", wardv1.CollectionStatus_COLLECTION_STATUS_OK, []vol{
			{"/", fa, "", "sda1", false},
			{"/media/user/USBSTICK", fa, "", "sdb1", true},
			{"swap", fa, "", "sda5", false}}},
		{"lvm-root-swapfile", wardv1.CollectionStatus_COLLECTION_STATUS_OK, []vol{
			{"/", fa, "", "dm-0 (LVM) > sda3", false},
			{"/boot", fa, "", "sda2", false},
			{"/boot/efi", fa, "", "sda1", false},
			{"swap", fa, "", "file on /: dm-0 (LVM) > sda3", false}}},
		{"overlay-root", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, []vol{
			{"/", nil, "", "", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := filepath.Abs(filepath.Join("testdata/sysfs", tt.name))
			if err != nil {
				t.Fatal(err)
			}
			got := Collect(context.Background(), &source.Live{Root: root}, "linux")
			checktest.Golden(t, filepath.Join("testdata/sysfs", tt.name+".golden.json"), got)
			if got.Collection.GetStatus() != tt.status {
				t.Errorf("collection = %v, want %v", got.Collection, tt.status)
			}
			if len(got.Volumes) != len(tt.vols) {
				t.Fatalf("volumes = %v", got.Volumes)
			}
			for i, want := range tt.vols {
				v := got.Volumes[i]
				if v.MountPoint != want.mount || v.Method != want.method || v.Chain != want.chain || v.Removable != want.removable {
					t.Errorf("volume %d = %v, want %+v", i, v, want)
				}
				if (want.encrypted == nil) != (v.Encrypted == nil) || (want.encrypted != nil && *want.encrypted != *v.Encrypted) {
					t.Errorf("volume %s encrypted = %v, want %v", v.MountPoint, v.Encrypted, want.encrypted)
				}
				if v.System != (i == 0) || v.Swap != (want.mount == "swap") {
					t.Errorf("volume %s system=%v swap=%v", v.MountPoint, v.System, v.Swap)
				}
				if v.Encrypted == nil && v.Reason == "" {
					t.Errorf("volume %s unknown without a reason", v.MountPoint)
				}
				if v.GetEncrypted() && (v.Protection != wardv1.Protection_PROTECTION_ON || v.Conversion != wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED) {
					t.Errorf("volume %s protection %v conversion %v", v.MountPoint, v.Protection, v.Conversion)
				}
			}
		})
	}
}

// TestCollectLinuxUnknowns: reads that fail never give a good state.
func TestCollectLinuxUnknowns(t *testing.T) {
	ctx := context.Background()
	empty := source.NewRecorded(check.Host{OS: "linux"})
	got := Collect(ctx, empty, "linux")
	if got.Collection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED || len(got.Volumes) != 0 {
		t.Errorf("empty bundle: %v", got)
	}
	// mountinfo says root is 254:0 but sysfs is unreadable.
	rec := source.NewRecorded(check.Host{OS: "linux"})
	rec.AddFile("/proc/self/mountinfo", []byte("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"))
	got = Collect(ctx, rec, "linux")
	if got.Collection.GetStatus() == wardv1.CollectionStatus_COLLECTION_STATUS_OK || got.Volumes[0].Encrypted != nil || !got.Volumes[0].System {
		t.Errorf("no sysfs: %v", got)
	}
	// dm-crypt layer whose slave cannot be listed: still encrypted (the
	// crypt layer is above the unreadable part).
	rec.AddFile("/sys/dev/block/254:0/uevent", []byte("DEVNAME=dm-0\n"))
	rec.AddFile("/sys/class/block/dm-0/dm/uuid", []byte("CRYPT-LUKS2-abc-root\n"))
	got = Collect(ctx, rec, "linux")
	if !got.Volumes[0].GetEncrypted() {
		t.Errorf("crypt on top: %v", got.Volumes[0])
	}
	// dm-verity is not encryption.
	rec.AddFile("/sys/class/block/dm-0/dm/uuid", []byte("CRYPT-VERITY-abc-root\n"))
	got = Collect(ctx, rec, "linux")
	if got.Volumes[0].GetEncrypted() {
		t.Errorf("verity counted as encryption: %v", got.Volumes[0])
	}
}

func TestParseMountinfo(t *testing.T) {
	ms, err := parseMountinfo([]byte(`36 35 98:0 /mnt1 /mnt\0402 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
`))
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].MountPoint != "/mnt 2" || ms[0].Major != 98 || ms[0].FSType != "ext3" || ms[0].Source != "/dev/root" || ms[0].Root != "/mnt1" {
		t.Errorf("%+v", ms[0])
	}
	if r, ok := rootMount(ms); !ok || r.Major != 254 {
		t.Errorf("root %+v", r)
	}
	if m, ok := mountOf(ms, "/mnt 2/swapfile"); !ok || m.Major != 98 {
		t.Errorf("mountOf %+v", m)
	}
	for _, bad := range []string{"", "1 2 3\n", "1 2 x:y / / rw - ext4 /dev/x rw\n", "1 2 3:4 / / rw ext4 /dev/x\n"} {
		if _, err := parseMountinfo([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseLUKSHeaderCaptured(t *testing.T) {
	for _, tt := range []struct {
		file    string
		version int
		uuid    string
	}{
		{"luks2.bin", 2, "3a2d16a4-4a39-4567-a692-ccf133065c66"},
		{"luks1.bin", 1, "69475eef-5145-4325-b984-a116ab2db807"},
	} {
		data, err := os.ReadFile(filepath.Join("testdata/luks", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		h, err := parseLUKSHeader(data)
		if err != nil || h.Version != tt.version || h.UUID != tt.uuid {
			t.Errorf("%s: %+v %v", tt.file, h, err)
		}
		if tt.version == 1 && (h.Cipher != "aes-xts-plain64" || !slices.Equal(h.ActiveKeyslots, []int{0})) {
			t.Errorf("luks1: %+v", h)
		}
		// Truncated and corrupted copies are errors.
		if _, err := parseLUKSHeader(data[:300]); err == nil {
			t.Errorf("%s truncated parsed", tt.file)
		}
		bad := slices.Clone(data)
		bad[170] = 0xff
		if _, err := parseLUKSHeader(bad); err == nil {
			t.Errorf("%s with a corrupt UUID parsed", tt.file)
		}
	}
	for _, bad := range [][]byte{nil, []byte("LUKS\xba\xbe\x00\x03"), []byte("SKUL\xba\xbe\x00\x02"), make([]byte, 4096)} {
		if _, err := parseLUKSHeader(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestParseLUKSHeaderCryptsetup formats real LUKS containers with
// cryptsetup and reads their headers through the live Source.
func TestParseLUKSHeaderCryptsetup(t *testing.T) {
	const cryptsetup = "/usr/sbin/cryptsetup"
	if _, err := os.Stat(cryptsetup); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cryptsetup missing under CI: %v", err)
		}
		t.Skipf("cryptsetup not installed: %v", err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("ward test key, not a secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"luks2", "luks1"} {
		t.Run(typ, func(t *testing.T) {
			file := filepath.Join(dir, typ+".img")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(file, 20<<20); err != nil {
				t.Fatal(err)
			}
			args := []string{"luksFormat", "--type", typ, "--batch-mode", "--pbkdf-force-iterations", "1000", "--key-file", key, file}
			if typ == "luks2" {
				args = append(args[:4], append([]string{"--pbkdf", "pbkdf2"}, args[4:]...)...)
			}
			if out, err := exec.Command(cryptsetup, args...).CombinedOutput(); err != nil {
				t.Fatalf("cryptsetup %v: %v: %s", args, err, out)
			}
			out, err := exec.Command(cryptsetup, "luksUUID", file).Output()
			if err != nil {
				t.Fatal(err)
			}
			data, err := (&source.Live{Root: dir}).ReadFile(context.Background(), "/"+typ+".img", 4096)
			if err != nil {
				t.Fatal(err)
			}
			h, err := parseLUKSHeader(data)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int{"luks1": 1, "luks2": 2}[typ]; h.Version != want {
				t.Errorf("version %d, want %d", h.Version, want)
			}
			if h.UUID != strings.TrimSpace(string(out)) {
				t.Errorf("uuid %q, cryptsetup says %q", h.UUID, out)
			}
		})
	}
}

func TestParseSwaps(t *testing.T) {
	a, err := parseSwaps([]byte("Filename\tType\tSize\tUsed\tPriority\n/swap\\040file file 10 0 -2\n/dev/zram0 partition 1 0 100\n"))
	if err != nil || len(a) != 2 || a[0].Filename != "/swap file" || a[0].Type != "file" {
		t.Errorf("%+v %v", a, err)
	}
	for _, bad := range []string{"", "garbage\n", "Filename\n/dev/sda1 partition\n"} {
		if _, err := parseSwaps([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	for _, c := range []string{"sandbox-vda-plain", "luks2-lvm-ext4-swaplv", "overlay-root"} {
		data, err := os.ReadFile(filepath.Join("testdata/sysfs", c, "proc/self/mountinfo"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := parseMountinfo(data)
		if err == nil && len(ms) == 0 {
			t.Error("no error and no mounts")
		}
	})
}

func FuzzParseLUKSHeader(f *testing.F) {
	for _, n := range []string{"luks1.bin", "luks2.bin"} {
		data, err := os.ReadFile(filepath.Join("testdata/luks", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseLUKSHeader(data)
		if err != nil {
			return
		}
		if h.Version != 1 && h.Version != 2 || !plausibleUUID(h.UUID) {
			t.Errorf("accepted %+v", h)
		}
	})
}

func FuzzParseSwaps(f *testing.F) {
	f.Add([]byte("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-2 partition 999420 0 -2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseSwaps(data)
	})
}
