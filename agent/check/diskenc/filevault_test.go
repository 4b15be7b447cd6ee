package diskenc

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func readFV(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFdesetupStatus(t *testing.T) {
	pct := func(p float64) *float64 { return &p }
	tests := []struct {
		file string
		want fvStatus
	}{
		{"on.txt", fvStatus{on: true}},
		{"off.txt", fvStatus{}},
		{"encrypting.txt", fvStatus{on: true, encrypting: true, percent: pct(35.6)}},
		{"encryption-pending.txt", fvStatus{on: true, encrypting: true, paused: true}},
		{"decrypting.txt", fvStatus{decrypting: true, percent: pct(37)}},
		{"deferred.txt", fvStatus{deferred: true}},
		{"on-restart-pending.txt", fvStatus{on: true, restart: "needs to be restarted to finish"}},
		{"off-enabled-after-restart.txt", fvStatus{restart: "will be enabled after the next restart"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseFdesetupStatus(readFV(t, "fdesetup/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if (got.percent == nil) != (tt.want.percent == nil) || (got.percent != nil && *got.percent != *tt.want.percent) {
				t.Errorf("percent = %v, want %v", got.percent, tt.want.percent)
			}
			got.percent, tt.want.percent = nil, nil
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseFdesetupStatusRejects(t *testing.T) {
	for name, text := range map[string]string{
		"empty":        "",
		"garbage":      string(readFV(t, "fdesetup/garbage.txt")),
		"truncated":    string(readFV(t, "fdesetup/truncated.txt")),
		"lowercase":    "filevault is on.",
		"contradicts":  "FileVault is On.\nFileVault is Off.\n",
		"percent 250":  "FileVault is On.\nEncryption in progress: Percent completed = 250\n",
		"two progress": "Encryption in progress: Percent completed = 5\nDecryption in progress: Percent completed = 5\n",
		"error after":  "FileVault is On.\nError: something failed\n",
		"only notes":   "FileVault master keychain appears to be installed.\n",
	} {
		if st, err := parseFdesetupStatus([]byte(text)); err == nil {
			t.Errorf("%s: parsed %+v", name, st)
		}
	}
}

func TestParseAPFSList(t *testing.T) {
	l, err := parseAPFSList(readFV(t, "diskutil/apple-silicon-filevault-on.plist"))
	if err != nil || l.data == nil || *l.data != (apfsVolume{device: "disk3s5", fileVault: true, encryption: true}) {
		t.Errorf("filevault-on: %+v %v", l.data, err)
	}
	l, err = parseAPFSList(readFV(t, "diskutil/apple-silicon-filevault-off.plist"))
	if err != nil || l.data == nil || *l.data != (apfsVolume{device: "disk3s5", fileVault: false, encryption: true}) {
		t.Errorf("filevault-off: %+v %v", l.data, err)
	}
	// Before 10.15: no Data role, one role-less boot volume.
	legacy := `<plist><dict><key>Containers</key><array><dict><key>Volumes</key><array>
<dict><key>DeviceIdentifier</key><string>disk1s1</string><key>Encryption</key><true/><key>FileVault</key><true/><key>Roles</key><array/></dict>
<dict><key>DeviceIdentifier</key><string>disk1s2</string><key>Encryption</key><false/><key>FileVault</key><false/><key>Roles</key><array><string>Preboot</string></array></dict>
</array></dict></array></dict></plist>`
	l, err = parseAPFSList([]byte(legacy))
	if err != nil || l.data == nil || l.data.device != "disk1s1" || !l.data.legacy {
		t.Errorf("legacy: %+v %v", l.data, err)
	}
	// Two Data volumes: ambiguous, no volume picked.
	two := strings.Replace(legacy, "<array/>", "<array><string>Data</string></array>", 1)
	two = strings.Replace(two, "<string>Preboot</string>", "<string>Data</string>", 1)
	if l, err = parseAPFSList([]byte(two)); err != nil || l.data != nil || l.note == "" {
		t.Errorf("two data volumes: %+v %v", l, err)
	}
	for name, bad := range map[string]string{
		"empty":        "",
		"not plist":    "FileVault is On.",
		"no container": "<plist><dict/></plist>",
		"no filevault": `<plist><dict><key>Containers</key><array><dict><key>Volumes</key><array><dict><key>DeviceIdentifier</key><string>disk3s5</string><key>Roles</key><array><string>Data</string></array></dict></array></dict></array></dict></plist>`,
		"truncated":    string(readFV(t, "diskutil/apple-silicon-filevault-on.plist"))[:5000],
	} {
		if l, err := parseAPFSList([]byte(bad)); err == nil {
			t.Errorf("%s: parsed %+v", name, l)
		}
	}
}

// fvSource replays fdesetup and diskutil captures; an empty name leaves the
// read unrecorded.
func fvSource(t testing.TB, arch, status, apfs string, prk, irk string) *source.Recorded {
	rec := source.NewRecorded(check.Host{OS: "darwin", Arch: arch})
	if status != "" {
		rec.AddCommand("fdesetup", fdesetupStatusArgs, 0, readFV(t, "fdesetup/"+status), nil)
	}
	if apfs != "" {
		rec.AddCommand("diskutil", diskutilAPFSArgs, 0, readFV(t, "diskutil/"+apfs), nil)
	}
	if prk != "" {
		rec.AddCommand("fdesetup", fdesetupPRKArgs, 0, []byte(prk+"\n"), nil)
	}
	if irk != "" {
		rec.AddCommand("fdesetup", fdesetupIRKArgs, 0, []byte(irk+"\n"), nil)
	}
	return rec
}

func TestCollectDarwin(t *testing.T) {
	const on, off = "apple-silicon-filevault-on.plist", "apple-silicon-filevault-off.plist"
	cases := map[string]*source.Recorded{
		"filevault-on":                 fvSource(t, "arm64", "on.txt", on, "true", "false"),
		"hardware-encrypted-fv-off":    fvSource(t, "arm64", "off.txt", off, "", ""),
		"encrypting":                   fvSource(t, "arm64", "encrypting.txt", on, "true", "true"),
		"encryption-pending":           fvSource(t, "amd64", "encryption-pending.txt", "", "false", "false"),
		"decrypting":                   fvSource(t, "arm64", "decrypting.txt", off, "", ""),
		"deferred":                     fvSource(t, "arm64", "deferred.txt", off, "", ""),
		"on-restart-pending":           fvSource(t, "amd64", "on-restart-pending.txt", "", "", ""),
		"off-enabled-after-restart":    fvSource(t, "amd64", "off-enabled-after-restart.txt", "", "", ""),
		"on-no-diskutil-no-keys":       fvSource(t, "amd64", "on.txt", "", "", ""),
		"fdesetup-says-on-diskutil-no": fvSource(t, "arm64", "on.txt", off, "true", "false"),
		"garbage":                      fvSource(t, "arm64", "garbage.txt", on, "true", "false"),
		"truncated":                    fvSource(t, "arm64", "truncated.txt", on, "true", "false"),
		"no-fdesetup":                  fvSource(t, "arm64", "", on, "true", "false"),
	}
	cases["no-fdesetup"].AddError(source.Record{Kind: source.KindCommand, Tool: "fdesetup", Args: fdesetupStatusArgs}, fs.ErrNotExist)
	cases["on-no-diskutil-no-keys"].AddError(source.Record{Kind: source.KindCommand, Tool: "diskutil", Args: diskutilAPFSArgs}, fs.ErrNotExist)
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			got := Collect(context.Background(), src, "darwin")
			checktest.Golden(t, filepath.Join("testdata/fdesetup", name+".golden.json"), got)
			if len(got.Volumes) != 1 || !got.Volumes[0].System {
				t.Fatalf("volumes: %v", got.Volumes)
			}
			v, status := got.Volumes[0], got.Collection.GetStatus()
			switch name {
			case "filevault-on":
				if !v.GetEncrypted() || v.Protection != wardv1.Protection_PROTECTION_ON || v.Device != "disk3s5" || v.MountPoint != darwinDataMount ||
					!slices.Equal(v.KeyProtectors, []string{"PersonalRecoveryKey"}) || status != wardv1.CollectionStatus_COLLECTION_STATUS_OK || !got.GetHardwareEncrypted() {
					t.Errorf("got %v", got)
				}
			case "hardware-encrypted-fv-off":
				// The disk is hardware-encrypted, and that is not FileVault.
				if v.Encrypted == nil || v.GetEncrypted() || v.Protection != wardv1.Protection_PROTECTION_OFF || !got.GetHardwareEncrypted() ||
					!strings.Contains(v.Reason, "without FileVault") || status != wardv1.CollectionStatus_COLLECTION_STATUS_OK {
					t.Errorf("got %v", got)
				}
			case "encrypting":
				if v.GetEncrypted() || v.Conversion != wardv1.Conversion_CONVERSION_ENCRYPTING || v.GetPercentEncrypted() != 35.6 || v.Protection != wardv1.Protection_PROTECTION_ON || len(v.KeyProtectors) != 2 {
					t.Errorf("got %v", got)
				}
			case "encryption-pending":
				if v.GetEncrypted() || v.Conversion != wardv1.Conversion_CONVERSION_ENCRYPTION_PAUSED || got.HardwareEncrypted != nil || status != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
					t.Errorf("got %v", got)
				}
			case "decrypting", "deferred", "on-restart-pending", "off-enabled-after-restart":
				if v.Encrypted == nil || v.GetEncrypted() || v.Protection != wardv1.Protection_PROTECTION_OFF || v.Reason == "" {
					t.Errorf("got %v", got)
				}
			case "on-no-diskutil-no-keys":
				// fdesetup decides; diskutil and the key questions only add.
				if !v.GetEncrypted() || status != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL || got.HardwareEncrypted != nil || len(v.KeyProtectors) != 0 {
					t.Errorf("got %v", got)
				}
			case "fdesetup-says-on-diskutil-no", "garbage", "truncated", "no-fdesetup":
				if v.Encrypted != nil || v.Protection != wardv1.Protection_PROTECTION_UNSPECIFIED || status != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED || got.Collection.Reason == "" {
					t.Errorf("unknown state gave %v", got)
				}
			}
		})
	}
}

func TestCollectDarwinFdesetupExitStatus(t *testing.T) {
	src := fvSource(t, "arm64", "", "apple-silicon-filevault-on.plist", "true", "false")
	src.AddCommand("fdesetup", fdesetupStatusArgs, 1, []byte("FileVault is On.\n"), []byte("Error: must be run as root"))
	got := Collect(context.Background(), src, "darwin")
	if got.Volumes[0].Encrypted != nil || got.Collection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
		t.Errorf("non-zero exit gave %v", got)
	}
	src = fvSource(t, "arm64", "on.txt", "apple-silicon-filevault-on.plist", "", "false")
	src.AddCommand("fdesetup", fdesetupPRKArgs, 0, []byte("maybe\n"), nil)
	got = Collect(context.Background(), src, "darwin")
	if !got.Volumes[0].GetEncrypted() || got.Collection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL || len(got.Volumes[0].KeyProtectors) != 0 {
		t.Errorf("bad recovery-key answer gave %v", got)
	}
}

func FuzzParseFdesetupStatus(f *testing.F) {
	for _, n := range []string{"on.txt", "off.txt", "encrypting.txt", "encryption-pending.txt", "decrypting.txt", "deferred.txt",
		"on-restart-pending.txt", "off-enabled-after-restart.txt", "garbage.txt", "truncated.txt"} {
		f.Add(readFV(f, "fdesetup/"+n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseFdesetupStatus(data)
		if err != nil {
			return
		}
		if st.on && !st.encrypting && !st.decrypting && st.restart == "" && !strings.Contains(string(data), "FileVault is On") {
			t.Errorf("fully on without the On headline: %q", data)
		}
		if st.percent != nil && (*st.percent < 0 || *st.percent > 100) {
			t.Errorf("percent %v", *st.percent)
		}
	})
}

func FuzzParseAPFSList(f *testing.F) {
	f.Add(readFV(f, "diskutil/apple-silicon-filevault-on.plist"))
	f.Add(readFV(f, "diskutil/apple-silicon-filevault-off.plist"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if l, err := parseAPFSList(data); err == nil && l.data == nil && l.note == "" {
			t.Error("no volume and no note")
		}
	})
}
