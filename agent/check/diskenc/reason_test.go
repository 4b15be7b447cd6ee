package diskenc

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/check/checktest/wintest"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/policies/texts"
)

// TestReasonText asserts the reason_text staff read on captured outputs
// (the same fixtures the goldens hold), by id and parameters, and renders
// a few in other languages.
func TestReasonText(t *testing.T) {
	// Linux: an overlay root (a container) is not on a disk Ward can follow.
	root, err := filepath.Abs("testdata/sysfs/overlay-root")
	if err != nil {
		t.Fatal(err)
	}
	got := Collect(context.Background(), &source.Live{Root: root}, "linux")
	want := []string{"reason.at place=/", "reason.disk_not_followable fstype=overlay source=overlay"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("overlay root: %q, want %q", g, want)
	}
	if s, want := texts.Render("uk", texts.FromProto(got.Collection.GetReasonText())),
		"/: файлова система overlay з overlay розташована не на диску, який Ward може простежити, тому її шифрування невідоме"; s != want {
		t.Errorf("uk: %q\nwant %q", s, want)
	}
	// A boot partition left unencrypted says why, a volume's own reason.
	root, err = filepath.Abs("testdata/sysfs/luks2-lvm-ext4-swaplv")
	if err != nil {
		t.Fatal(err)
	}
	got = Collect(context.Background(), &source.Live{Root: root}, "linux")
	for _, v := range got.Volumes {
		if v.MountPoint == "/boot" && !slices.Equal(checktest.Texts(v.ReasonText), []string{"reason.disk_boot_partition"}) {
			t.Errorf("/boot: %q", checktest.Texts(v.ReasonText))
		}
	}

	// macOS: FileVault's states on captured fdesetup output.
	for _, tt := range []struct {
		status string
		want   []string
	}{
		{"decrypting.txt", []string{"reason.filevault_decrypting", "reason.filevault_decrypted_percent percent=37", "reason.filevault_hardware_only"}},
		{"encryption-pending.txt", []string{"reason.filevault_pending"}},
		{"on-restart-pending.txt", []string{"reason.filevault_on_not_active detail=needs to be restarted to finish"}},
		{"off-enabled-after-restart.txt", []string{"reason.filevault_off_but detail=will be enabled after the next restart"}},
		{"deferred.txt", []string{"reason.filevault_off", "reason.filevault_deferred", "reason.filevault_hardware_only"}},
	} {
		arch := "amd64"
		if tt.status == "decrypting.txt" || tt.status == "deferred.txt" {
			arch = "arm64"
		}
		got := Collect(context.Background(), fvSource(t, arch, tt.status, "", "", ""), "darwin")
		if g := checktest.Texts(got.Volumes[0].ReasonText); !slices.Equal(g, tt.want) {
			t.Errorf("%s: volume reason_text %q, want %q", tt.status, g, tt.want)
		}
	}
	got = Collect(context.Background(), fvSource(t, "arm64", "", "", "", ""), "darwin")
	want = []string{"reason.filevault_unknown", "reason.not_recorded source=fdesetup", "reason.not_recorded source=diskutil"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("no fdesetup: %q, want %q", g, want)
	}
	if s, want := texts.Render("ar", texts.FromProto(got.Collection.GetReasonText())),
		"لا يستطيع Ward معرفة ما إذا كان FileVault مفعّلًا: حزمة الدعم لا تحتوي على fdesetup؛ حزمة الدعم لا تحتوي على diskutil"; s != want {
		t.Errorf("ar: %q\nwant %q", s, want)
	}

	// Windows: suspended protection on a captured WMI row; WMI refused.
	got = Collect(context.Background(), bitlockerFake(t, "suspended-aes128"), "windows")
	if g := checktest.Texts(systemVolume(got).ReasonText); !slices.Equal(g, []string{"reason.bitlocker_suspended"}) {
		t.Errorf("suspended: %q", g)
	}
	f := wintest.New()
	f.SetWMI(bitlockerNamespace, bitlockerQuery, nil, fmt.Errorf("wmi: %w", fs.ErrPermission))
	got = Collect(context.Background(), f, "windows")
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, []string{"reason.needs_admin source=BitLocker"}) ||
		!check.NeedsAdmin(texts.FromProto(got.Collection.GetReasonText())) {
		t.Errorf("WMI denied: %q", g)
	}
	f = wintest.New()
	f.SetWMI(bitlockerNamespace, bitlockerQuery, nil, fmt.Errorf("wmi: 0x8004100E: %w", fs.ErrNotExist))
	got = Collect(context.Background(), f, "windows")
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, []string{"reason.bitlocker_absent"}) {
		t.Errorf("Windows Home: %q", g)
	}
}
