package diskenc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// BitLocker's WMI interface. ConversionStatus, EncryptionMethod, VolumeType
// and IsVolumeInitializedForProtection are properties since Windows 8
// (Win32_EncryptableVolume documentation, learn.microsoft.com secprov).
const (
	bitlockerNamespace = `ROOT\CIMV2\Security\MicrosoftVolumeEncryption`
	bitlockerQuery     = `SELECT DeviceID, DriveLetter, ProtectionStatus, ConversionStatus, EncryptionMethod, VolumeType, IsVolumeInitializedForProtection FROM Win32_EncryptableVolume`
)

// bitlockerDetailsScript asks each encryptable volume for its encryption
// percentage (GetConversionStatus) and its key protector types
// (GetKeyProtectors, GetKeyProtectorType), which WMI properties do not
// hold, and prints them as compact JSON. It is one line without double
// quotes so the Windows command line passes it to PowerShell unchanged.
const bitlockerDetailsScript = `$ErrorActionPreference = 'Stop'; ` +
	`$ns = 'root\CIMV2\Security\MicrosoftVolumeEncryption'; ` +
	`$out = @(foreach ($v in @(Get-CimInstance -Namespace $ns -ClassName Win32_EncryptableVolume)) { ` +
	`$c = Invoke-CimMethod -InputObject $v -MethodName GetConversionStatus; ` +
	`$k = Invoke-CimMethod -InputObject $v -MethodName GetKeyProtectors; ` +
	`$t = @(foreach ($id in @($k.VolumeKeyProtectorID)) { if ($id) { [int](Invoke-CimMethod -InputObject $v -MethodName GetKeyProtectorType -Arguments @{VolumeKeyProtectorID = $id}).KeyProtectorType } }); ` +
	`[ordered]@{DeviceID = $v.DeviceID; ConversionReturn = [int]$c.ReturnValue; EncryptionPercentage = [int]$c.EncryptionPercentage; ProtectorsReturn = [int]$k.ReturnValue; KeyProtectorTypes = $t} }); ` +
	`ConvertTo-Json -InputObject $out -Compress -Depth 3`

// bitlockerDetailsArgs is the PowerShell argv for bitlockerDetailsScript.
var bitlockerDetailsArgs = []string{"-NoProfile", "-NonInteractive", "-Command", bitlockerDetailsScript}

// Win32_EncryptableVolume.VolumeType values.
const (
	volumeTypeOS       = 0
	volumeTypeFixed    = 1
	volumeTypePortable = 2
)

// bitlockerMethods names Win32_EncryptableVolume.EncryptionMethod values.
var bitlockerMethods = map[int64]string{
	1: "BitLocker AES-128 with Diffuser",
	2: "BitLocker AES-256 with Diffuser",
	3: "BitLocker AES-CBC 128",
	4: "BitLocker AES-CBC 256",
	5: "BitLocker hardware encryption",
	6: "BitLocker XTS-AES 128",
	7: "BitLocker XTS-AES 256",
}

// bitlockerConversions maps ConversionStatus (0..5) to Conversion.
var bitlockerConversions = map[int64]wardv1.Conversion{
	0: wardv1.Conversion_CONVERSION_FULLY_DECRYPTED,
	1: wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED,
	2: wardv1.Conversion_CONVERSION_ENCRYPTING,
	3: wardv1.Conversion_CONVERSION_DECRYPTING,
	4: wardv1.Conversion_CONVERSION_ENCRYPTION_PAUSED,
	5: wardv1.Conversion_CONVERSION_DECRYPTION_PAUSED,
}

// bitlockerProtectors names GetKeyProtectorType values.
var bitlockerProtectors = map[int64]string{
	0:  "Unknown",
	1:  "TPM",
	2:  "ExternalKey",
	3:  "RecoveryPassword",
	4:  "TPMAndPIN",
	5:  "TPMAndStartupKey",
	6:  "TPMAndPINAndStartupKey",
	7:  "PublicKey",
	8:  "Passphrase",
	9:  "TPMCertificate",
	10: "ADAccountOrGroup",
}

// collectWindows reads BitLocker's state per volume from WMI, then the
// encryption percentage and key protectors through PowerShell. If the
// second part fails, the first still stands and the collection is PARTIAL.
func collectWindows(ctx context.Context, src check.Source) *wardv1.DiskEncryptionFacts {
	rows, err := src.WMI(ctx, bitlockerNamespace, bitlockerQuery)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &wardv1.DiskEncryptionFacts{Collection: check.FailedText([]texts.Text{texts.New("reason.bitlocker_absent")},
			"BitLocker cannot be queried on this machine: its WMI namespace %s does not exist. "+
				"Windows Home editions have no BitLocker management (some offer \"Device Encryption\" instead, "+
				"which Ward could not read here), so disk encryption is unknown (%v)", bitlockerNamespace, err)}
	case errors.Is(err, fs.ErrPermission):
		return &wardv1.DiskEncryptionFacts{Collection: check.FailedText([]texts.Text{check.ErrText("BitLocker", err)},
			"reading BitLocker's state needs administrator rights; Ward was denied (%v)", err)}
	case err != nil:
		return &wardv1.DiskEncryptionFacts{Collection: check.FailedText([]texts.Text{check.ErrText("BitLocker", err)}, "could not query BitLocker: %v", err)}
	}
	facts := &wardv1.DiskEncryptionFacts{Volumes: parseBitLockerVolumes(rows)}
	if len(facts.Volumes) == 0 {
		facts.Collection = check.FailedText([]texts.Text{texts.New("reason.bitlocker_no_volumes")}, "BitLocker reports no volumes, so the system disk's encryption is unknown")
		return facts
	}

	var problems check.Problems
	var system *wardv1.Volume
	for _, v := range facts.Volumes {
		if v.System {
			system = v
		}
	}
	switch {
	case system == nil:
		problems.Add("no volume is marked as the operating-system volume", texts.New("reason.bitlocker_no_system"))
	case system.Encrypted == nil || system.Protection == wardv1.Protection_PROTECTION_UNSPECIFIED:
		problems.Add(fmt.Sprintf("the state of the operating-system volume %s is unknown: %s", system.MountPoint, system.Reason),
			systemText(system)...)
	}

	details, err := bitlockerDetails(ctx, src)
	if err != nil {
		problems.Add("encryption percentage and key protectors are unknown: "+err.Error(),
			texts.New("reason.bitlocker_details_unknown"), check.ErrText("powershell", err))
	} else {
		var missing []string
		for _, v := range facts.Volumes {
			d, ok := details[v.Device]
			if !ok || v.Device == "" {
				missing = append(missing, volumeName(v))
				continue
			}
			if d.percent != nil {
				p := *d.percent
				v.PercentEncrypted = &p
			}
			v.KeyProtectors = d.protectors
			if d.percent == nil || !d.protectorsKnown {
				missing = append(missing, volumeName(v))
			}
		}
		if len(missing) > 0 {
			problems.Add("encryption percentage or key protectors are unknown for "+strings.Join(missing, ", "),
				texts.New("reason.bitlocker_details_missing", "places", strings.Join(missing, ", ")))
		}
	}

	if problems.Len() > 0 {
		facts.Collection = check.PartialText(problems.Text, "%s", problems.String())
	} else {
		facts.Collection = check.OK()
	}
	return facts
}

func volumeName(v *wardv1.Volume) string {
	if v.MountPoint != "" {
		return v.MountPoint
	}
	return v.Device
}

// systemText is why the operating-system volume's state is unknown, for
// staff: its own reasons, introduced by its drive letter.
func systemText(v *wardv1.Volume) []texts.Text {
	why := texts.FromProto(v.ReasonText)
	if len(why) == 0 {
		why = []texts.Text{texts.New("reason.bitlocker_property_unknown", "property", "ProtectionStatus")}
	}
	return append([]texts.Text{check.At(v.MountPoint)}, why...)
}

// parseBitLockerVolumes turns Win32_EncryptableVolume rows into volumes. A
// property that is missing or of an unexpected type leaves its fact
// unknown, with a reason.
func parseBitLockerVolumes(rows []map[string]any) []*wardv1.Volume {
	vols := make([]*wardv1.Volume, 0, len(rows))
	for _, row := range rows {
		v := &wardv1.Volume{}
		var reasons []string
		var why []texts.Text
		v.Device, _ = check.RowString(row, "DeviceID")
		v.MountPoint, _ = check.RowString(row, "DriveLetter")

		switch t, ok := check.RowInt(row, "VolumeType"); {
		case !ok:
			reasons, why = append(reasons, "the volume type is unknown"), append(why, texts.New("reason.bitlocker_property_unknown", "property", "VolumeType"))
		case t == volumeTypeOS:
			v.System = true
		case t == volumeTypePortable:
			v.Removable = true
		case t != volumeTypeFixed:
			reasons, why = append(reasons, fmt.Sprintf("volume type %d", t)), append(why, texts.New("reason.bitlocker_property_value", "property", "VolumeType", "value", strconv.FormatInt(t, 10)))
		}

		cs, ok := check.RowInt(row, "ConversionStatus")
		if c, known := bitlockerConversions[cs]; ok && known {
			v.Conversion = c
			// Only a fully encrypted volume is encrypted; one being
			// encrypted is not, until BitLocker has finished.
			enc := c == wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED
			v.Encrypted = &enc
		} else {
			reasons, why = append(reasons, "the conversion status is unknown"), append(why, texts.New("reason.bitlocker_property_unknown", "property", "ConversionStatus"))
		}

		if m, ok := check.RowInt(row, "EncryptionMethod"); ok && m != 0 {
			if name, known := bitlockerMethods[m]; known {
				v.Method = name
			} else {
				v.Method = fmt.Sprintf("BitLocker (method %d)", m)
			}
			if m == 5 {
				reasons, why = append(reasons, "BitLocker relies on the drive's own hardware encryption"), append(why, texts.New("reason.bitlocker_hardware"))
			}
		}

		ps, ok := check.RowInt(row, "ProtectionStatus")
		switch {
		case !ok:
			reasons, why = append(reasons, "the protection status is unknown"), append(why, texts.New("reason.bitlocker_property_unknown", "property", "ProtectionStatus"))
		case ps == 1 && v.Conversion == wardv1.Conversion_CONVERSION_FULLY_DECRYPTED:
			reasons, why = append(reasons, "BitLocker reports protection on for a decrypted volume"), append(why, texts.New("reason.bitlocker_on_but_decrypted"))
		case ps == 1:
			v.Protection = wardv1.Protection_PROTECTION_ON
		case ps == 0 && v.Conversion == wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED:
			// Encrypted, but the protectors are suspended (or none exist):
			// the key sits in the clear on the disk.
			v.Protection = wardv1.Protection_PROTECTION_SUSPENDED
			reasons, why = append(reasons, "BitLocker protection is suspended: the key is stored in the clear on the disk, so anyone with the disk can read the data"), append(why, texts.New("reason.bitlocker_suspended"))
		case ps == 0:
			v.Protection = wardv1.Protection_PROTECTION_OFF
		case ps == 2:
			reasons, why = append(reasons, "the volume is locked, so its protection status cannot be read"), append(why, texts.New("reason.bitlocker_locked"))
		default:
			reasons, why = append(reasons, fmt.Sprintf("protection status %d", ps)), append(why, texts.New("reason.bitlocker_property_value", "property", "ProtectionStatus", "value", strconv.FormatInt(ps, 10)))
		}

		if init, ok := check.RowBool(row, "IsVolumeInitializedForProtection"); ok && !init && v.System && v.Conversion != wardv1.Conversion_CONVERSION_FULLY_DECRYPTED {
			reasons, why = append(reasons, "the volume is not initialised for protection"), append(why, texts.New("reason.bitlocker_not_initialised"))
		}
		check.SetVolumeReason(v, strings.Join(reasons, "; "), why...)
		vols = append(vols, v)
	}
	return vols
}

// bitlockerDetail is what the PowerShell script adds for one volume.
type bitlockerDetail struct {
	percent         *float64
	protectors      []string
	protectorsKnown bool
}

func bitlockerDetails(ctx context.Context, src check.Source) (map[string]bitlockerDetail, error) {
	out, err := check.Output(ctx, src, "powershell", bitlockerDetailsArgs...)
	if err != nil {
		return nil, err
	}
	return parseBitLockerDetails(out)
}

// psVolume is one volume in bitlockerDetailsScript's output.
type psVolume struct {
	DeviceID             string          `json:"DeviceID"`
	ConversionReturn     *int64          `json:"ConversionReturn"`
	EncryptionPercentage *int64          `json:"EncryptionPercentage"`
	ProtectorsReturn     *int64          `json:"ProtectorsReturn"`
	KeyProtectorTypes    json.RawMessage `json:"KeyProtectorTypes"`
}

// parseBitLockerDetails parses bitlockerDetailsScript's JSON, by DeviceID.
func parseBitLockerDetails(data []byte) (map[string]bitlockerDetail, error) {
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if len(data) == 0 {
		return nil, errors.New("PowerShell printed nothing")
	}
	var vols []psVolume
	if data[0] == '{' {
		// A single object, should PowerShell unwrap a one-volume array.
		var one psVolume
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("parse PowerShell output: %w", err)
		}
		vols = []psVolume{one}
	} else if err := json.Unmarshal(data, &vols); err != nil {
		return nil, fmt.Errorf("parse PowerShell output: %w", err)
	}
	out := make(map[string]bitlockerDetail, len(vols))
	for _, pv := range vols {
		if pv.DeviceID == "" {
			return nil, errors.New("parse PowerShell output: a volume has no DeviceID")
		}
		var d bitlockerDetail
		if pv.ConversionReturn != nil && *pv.ConversionReturn == 0 && pv.EncryptionPercentage != nil &&
			*pv.EncryptionPercentage >= 0 && *pv.EncryptionPercentage <= 100 {
			p := float64(*pv.EncryptionPercentage)
			d.percent = &p
		}
		if pv.ProtectorsReturn != nil && *pv.ProtectorsReturn == 0 {
			types, ok := protectorTypes(pv.KeyProtectorTypes)
			if ok {
				d.protectorsKnown = true
				for _, t := range types {
					name, known := bitlockerProtectors[t]
					if !known {
						name = fmt.Sprintf("type:%d", t)
					}
					d.protectors = append(d.protectors, name)
				}
			}
		}
		out[pv.DeviceID] = d
	}
	return out, nil
}

// protectorTypes reads KeyProtectorTypes, which Windows PowerShell may print
// as a list, a single number, null (no protectors) or, for a wrapped array,
// {"value": [...], "Count": n}.
func protectorTypes(raw json.RawMessage) ([]int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, true
	}
	var list []int64
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, true
	}
	var one int64
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int64{one}, true
	}
	var wrapped struct {
		Value *[]int64 `json:"value"`
	}
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Value != nil {
		return *wrapped.Value, true
	}
	return nil, false
}
