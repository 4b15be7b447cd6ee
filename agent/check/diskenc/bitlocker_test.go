package diskenc

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/check/checktest/wintest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// bitlockerFake loads testdata/wmi/<name>.json and testdata/powershell/<name>.json.
func bitlockerFake(t *testing.T, name string) *wintest.Fake {
	t.Helper()
	f := wintest.New()
	var rows []map[string]any
	wintest.ReadJSON(t, filepath.Join("testdata", "wmi", name+".json"), &rows)
	f.SetWMI(bitlockerNamespace, bitlockerQuery, rows, nil)
	out, err := os.ReadFile(filepath.Join("testdata", "powershell", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	f.SetCommand("powershell", bitlockerDetailsArgs, 0, out, nil)
	return f
}

func TestCollectBitLocker(t *testing.T) {
	on, off, susp := wardv1.Protection_PROTECTION_ON, wardv1.Protection_PROTECTION_OFF, wardv1.Protection_PROTECTION_SUSPENDED
	tests := []struct {
		name       string
		status     wardv1.CollectionStatus
		encrypted  bool
		protection wardv1.Protection
		conversion wardv1.Conversion
		method     string
		percent    float64
		protectors string
	}{
		{"compliant-xts128", wardv1.CollectionStatus_COLLECTION_STATUS_OK, true, on, wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED, "BitLocker XTS-AES 128", 100, "TPM,RecoveryPassword"},
		{"suspended-aes128", wardv1.CollectionStatus_COLLECTION_STATUS_OK, true, susp, wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED, "BitLocker AES-CBC 128", 100, "TPM,RecoveryPassword"},
		{"encrypting-47", wardv1.CollectionStatus_COLLECTION_STATUS_OK, false, off, wardv1.Conversion_CONVERSION_ENCRYPTING, "BitLocker XTS-AES 256", 47, "TPM,RecoveryPassword"},
		{"off-with-data", wardv1.CollectionStatus_COLLECTION_STATUS_OK, false, off, wardv1.Conversion_CONVERSION_FULLY_DECRYPTED, "", 0, ""},
		{"locked-usb", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, true, on, wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED, "BitLocker XTS-AES 256", 100, "TPM,RecoveryPassword"},
		{"garbage-details", wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, true, on, wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED, "BitLocker XTS-AES 128", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collect(context.Background(), bitlockerFake(t, tt.name), "windows")
			checktest.Golden(t, filepath.Join("testdata", "wmi", tt.name+".golden.json"), got)
			if got.GetCollection().GetStatus() != tt.status {
				t.Fatalf("status %v (%s), want %v", got.GetCollection().GetStatus(), got.GetCollection().GetReason(), tt.status)
			}
			sys := systemVolume(got)
			if sys == nil || sys.GetMountPoint() != "C:" || sys.Encrypted == nil {
				t.Fatalf("no known system volume C:: %v", got.GetVolumes())
			}
			if sys.GetEncrypted() != tt.encrypted || sys.GetProtection() != tt.protection || sys.GetConversion() != tt.conversion || sys.GetMethod() != tt.method {
				t.Errorf("C: = encrypted %v protection %v conversion %v method %q", sys.GetEncrypted(), sys.GetProtection(), sys.GetConversion(), sys.GetMethod())
			}
			if tt.percent < 0 {
				if sys.PercentEncrypted != nil {
					t.Errorf("percent %v from garbage", sys.GetPercentEncrypted())
				}
			} else if sys.PercentEncrypted == nil || sys.GetPercentEncrypted() != tt.percent {
				t.Errorf("percent = %v, want %v", sys.PercentEncrypted, tt.percent)
			}
			if p := strings.Join(sys.GetKeyProtectors(), ","); p != tt.protectors {
				t.Errorf("protectors = %q, want %q", p, tt.protectors)
			}
		})
	}
}

func systemVolume(f *wardv1.DiskEncryptionFacts) *wardv1.Volume {
	for _, v := range f.GetVolumes() {
		if v.GetSystem() {
			return v
		}
	}
	return nil
}

func TestBitLockerSuspendedIsNeverOn(t *testing.T) {
	got := Collect(context.Background(), bitlockerFake(t, "suspended-aes128"), "windows")
	sys := systemVolume(got)
	if sys.GetProtection() == wardv1.Protection_PROTECTION_ON || !strings.Contains(sys.GetReason(), "suspended") {
		t.Errorf("suspended volume: protection %v reason %q", sys.GetProtection(), sys.GetReason())
	}
}

func TestBitLockerLockedRemovable(t *testing.T) {
	got := Collect(context.Background(), bitlockerFake(t, "locked-usb"), "windows")
	var usb *wardv1.Volume
	for _, v := range got.GetVolumes() {
		if v.GetMountPoint() == "E:" {
			usb = v
		}
	}
	if usb == nil || !usb.GetRemovable() || usb.GetProtection() != wardv1.Protection_PROTECTION_UNSPECIFIED ||
		usb.PercentEncrypted != nil || strings.Join(usb.GetKeyProtectors(), ",") != "Passphrase,RecoveryPassword" ||
		!strings.Contains(usb.GetReason(), "locked") {
		t.Errorf("locked E: = %v", usb)
	}
}

func TestBitLockerWMIFailures(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"home-no-namespace", fmt.Errorf("wmi: 0x8004100E: %w", fs.ErrNotExist), "Windows Home"},
		{"denied", fmt.Errorf("wmi: %w", fs.ErrPermission), "administrator"},
		{"not-recorded", check.ErrNotRecorded, "could not query BitLocker"},
		{"timeout", context.DeadlineExceeded, "could not query BitLocker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := wintest.New()
			f.SetWMI(bitlockerNamespace, bitlockerQuery, nil, tt.err)
			got := Collect(context.Background(), f, "windows")
			if got.GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED ||
				!strings.Contains(got.GetCollection().GetReason(), tt.want) || len(got.GetVolumes()) != 0 {
				t.Errorf("got %v", got)
			}
		})
	}
	f := wintest.New()
	f.SetWMI(bitlockerNamespace, bitlockerQuery, []map[string]any{}, nil)
	if got := Collect(context.Background(), f, "windows"); got.GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
		t.Errorf("no volumes: %v", got)
	}
}

func TestBitLockerDetailsFailures(t *testing.T) {
	for name, set := range map[string]func(f *wintest.Fake){
		"powershell missing": func(f *wintest.Fake) {
			f.SetCommand("powershell", bitlockerDetailsArgs, 0, nil, fmt.Errorf("powershell: %w", fs.ErrNotExist))
		},
		"exit 1": func(f *wintest.Fake) { f.SetCommand("powershell", bitlockerDetailsArgs, 1, nil, nil) },
		"empty":  func(f *wintest.Fake) { f.SetCommand("powershell", bitlockerDetailsArgs, 0, []byte("  \r\n"), nil) },
		"truncated": func(f *wintest.Fake) {
			f.SetCommand("powershell", bitlockerDetailsArgs, 0, []byte(`[{"DeviceID":"x","Conv`), nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := bitlockerFake(t, "compliant-xts128")
			set(f)
			got := Collect(context.Background(), f, "windows")
			sys := systemVolume(got)
			if got.GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL || sys.PercentEncrypted != nil ||
				len(sys.GetKeyProtectors()) != 0 || sys.GetProtection() != wardv1.Protection_PROTECTION_ON {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestParseBitLockerVolumesGarbageIsUnknown(t *testing.T) {
	for _, row := range []map[string]any{
		{},
		{"DriveLetter": "C:", "VolumeType": "zero", "ConversionStatus": 9, "ProtectionStatus": 7},
		{"DriveLetter": "C:", "VolumeType": 0, "ConversionStatus": nil, "ProtectionStatus": nil},
		{"DriveLetter": "C:", "VolumeType": 0, "ConversionStatus": 1.5, "ProtectionStatus": true},
	} {
		v := parseBitLockerVolumes([]map[string]any{row})[0]
		if v.Encrypted != nil || v.Protection != wardv1.Protection_PROTECTION_UNSPECIFIED || v.Reason == "" {
			t.Errorf("row %v: %v", row, v)
		}
	}
}

func TestBitLockerScriptIsOneLineWithoutDoubleQuotes(t *testing.T) {
	if strings.ContainsAny(bitlockerDetailsScript, "\"\n\r") {
		t.Error("the script must be one line without double quotes to survive the Windows command line")
	}
}

func FuzzParseBitLockerDetails(f *testing.F) {
	for _, name := range []string{"compliant-xts128", "locked-usb", "garbage-details", "off-with-data"} {
		data, err := os.ReadFile(filepath.Join("testdata", "powershell", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"DeviceID":"a","ConversionReturn":0,"EncryptionPercentage":101}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseBitLockerDetails(data)
		if err != nil {
			if got != nil {
				t.Errorf("details %v with error %v", got, err)
			}
			return
		}
		for id, d := range got {
			if id == "" {
				t.Error("volume without DeviceID")
			}
			if d.percent != nil && (*d.percent < 0 || *d.percent > 100) {
				t.Errorf("percent %v", *d.percent)
			}
		}
	})
}

func FuzzParseBitLockerVolumes(f *testing.F) {
	for _, name := range []string{"compliant-xts128", "suspended-aes128", "encrypting-47", "locked-usb"} {
		data, err := os.ReadFile(filepath.Join("testdata", "wmi", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rows []map[string]any
		if wintest.DecodeJSON(data, &rows) != nil {
			return
		}
		for i, v := range parseBitLockerVolumes(rows) {
			cs, ok := check.RowInt(rows[i], "ConversionStatus")
			if v.GetEncrypted() && (!ok || cs != 1) {
				t.Errorf("encrypted from ConversionStatus %v", rows[i]["ConversionStatus"])
			}
			ps, ok := check.RowInt(rows[i], "ProtectionStatus")
			if v.GetProtection() == wardv1.Protection_PROTECTION_ON && (!ok || ps != 1) {
				t.Errorf("protection on from ProtectionStatus %v", rows[i]["ProtectionStatus"])
			}
		}
	})
}
