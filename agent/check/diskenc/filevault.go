package diskenc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/plist"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Commands collectDarwin runs.
var (
	fdesetupStatusArgs = []string{"status"}
	fdesetupPRKArgs    = []string{"haspersonalrecoverykey"}
	fdesetupIRKArgs    = []string{"hasinstitutionalrecoverykey"}
	diskutilAPFSArgs   = []string{"apfs", "list", "-plist"}
)

// Mount points of the volume that holds user data. Since macOS 10.15 the
// system lives on a sealed, read-only volume that holds no user data (and
// is not what FileVault protects); users' files live on the Data volume of
// the same volume group, mounted at /System/Volumes/Data. Before 10.15 one
// volume, "/", held both.
const (
	darwinDataMount   = "/System/Volumes/Data"
	darwinLegacyMount = "/"
)

// maxAPFSPlist caps diskutil's plist; real ones are tens of kilobytes.
const maxAPFSPlist = 4 << 20

// collectDarwin reports FileVault on the volume that holds user data.
//
// FileVault is the protection that matters: Macs with a T2 chip or Apple
// silicon encrypt the internal SSD always, with a key that needs no user
// secret, so the disk reads as "encrypted" while a thief who boots the Mac
// reads everything. That is reported as hardware_encrypted and explained,
// never as an encrypted volume.
//
// fdesetup status decides. diskutil apfs list -plist finds the Data
// volume, cross-checks FileVault and tells hardware encryption apart; when
// it fails the collection is PARTIAL. fdesetup's recovery-key questions
// fill key_protectors and never change the encryption facts.
func collectDarwin(ctx context.Context, src check.Source) *wardv1.DiskEncryptionFacts {
	facts := &wardv1.DiskEncryptionFacts{}
	// System: the Data volume (or / before 10.15) is the volume whose
	// protection a disk-encryption policy is about; see darwinDataMount.
	vol := &wardv1.Volume{MountPoint: darwinDataMount, System: true, Method: "FileVault"}
	facts.Volumes = []*wardv1.Volume{vol}
	var problems check.Problems
	var notes []string
	var noteText []texts.Text

	apfs, apfsErr := readAPFS(ctx, src)
	switch {
	case apfsErr != nil:
		problems.Add(apfsErr.Error(), check.TextOf("diskutil", apfsErr)...)
	case apfs.data == nil:
		problems.Add(apfs.note, texts.New(check.IDUnreadable, "source", "diskutil", "detail", apfs.note))
	default:
		vol.Device = apfs.data.device
		if apfs.data.legacy {
			vol.MountPoint = darwinLegacyMount
		}
	}
	if host, err := src.Host(ctx); err == nil && host.Arch == "arm64" {
		// Every Apple silicon Mac encrypts its internal storage in the
		// Secure Enclave, FileVault or not.
		t := true
		facts.HardwareEncrypted = &t
	}
	if apfs.data != nil && apfs.data.encryption && !apfs.data.fileVault {
		// APFS reports the hardware (T2, Apple silicon) volume key as
		// Encryption without FileVault.
		t := true
		facts.HardwareEncrypted = &t
	}

	st, err := fdesetupStatus(ctx, src)
	if err != nil {
		why := append([]texts.Text{texts.New("reason.filevault_unknown")}, check.TextOf("fdesetup", err)...)
		check.SetVolumeReason(vol, "FileVault state unknown: "+err.Error(), why...)
		facts.Collection = check.FailedText(append(why, problems.Text...),
			"cannot tell whether FileVault is on: %s", strings.Join(append([]string{err.Error()}, problems.English...), "; "))
		return facts
	}
	applyFileVault(vol, st)

	// diskutil must agree with fdesetup about the finished states;
	// otherwise neither is trusted.
	if apfs.data != nil {
		if st.on && !st.encrypting && !st.decrypting && st.restart == "" && !apfs.data.fileVault {
			facts.Collection = fvUnknown(vol, fmt.Sprintf("fdesetup says FileVault is on but diskutil reports FileVault off on %s; state unknown", apfs.data.device),
				texts.New("reason.filevault_disagree", "device", apfs.data.device))
			return facts
		}
		if !st.on && !st.decrypting && apfs.data.fileVault {
			facts.Collection = fvUnknown(vol, fmt.Sprintf("fdesetup says FileVault is off but diskutil reports FileVault on %s; state unknown", apfs.data.device),
				texts.New("reason.filevault_disagree", "device", apfs.data.device))
			return facts
		}
	}
	if !vol.GetEncrypted() && facts.GetHardwareEncrypted() {
		notes = append(notes, "the internal disk is encrypted by the Mac's hardware, but without FileVault that key needs no password: anyone who starts the Mac can read the data")
		noteText = append(noteText, texts.New("reason.filevault_hardware_only"))
	}
	if vol.Protection == wardv1.Protection_PROTECTION_ON {
		for _, kp := range []struct {
			args []string
			name string
		}{{fdesetupPRKArgs, "PersonalRecoveryKey"}, {fdesetupIRKArgs, "InstitutionalRecoveryKey"}} {
			has, err := fdesetupBool(ctx, src, kp.args)
			switch {
			case err != nil:
				problems.Add(fmt.Sprintf("%s unknown: %v", kp.name, err),
					append([]texts.Text{texts.New("reason.filevault_key_unknown", "key", kp.name)}, check.TextOf("fdesetup", err)...)...)
			case has:
				vol.KeyProtectors = append(vol.KeyProtectors, kp.name)
			}
		}
	}
	vol.Reason = fvJoin(append([]string{vol.Reason}, notes...))
	vol.ReasonText = append(vol.ReasonText, texts.ToProto(noteText)...)
	if problems.Len() > 0 {
		facts.Collection = check.PartialText(problems.Text, "%s", problems.String())
	} else {
		facts.Collection = check.OK()
	}
	return facts
}

// fvUnknown clears vol's encryption facts and returns a failed collection
// saying why.
func fvUnknown(vol *wardv1.Volume, reason string, text texts.Text) *wardv1.Collection {
	vol.Encrypted = nil
	vol.Protection = wardv1.Protection_PROTECTION_UNSPECIFIED
	vol.Conversion = wardv1.Conversion_CONVERSION_UNSPECIFIED
	vol.PercentEncrypted = nil
	vol.KeyProtectors = nil
	check.SetVolumeReason(vol, reason, text)
	return check.FailedText([]texts.Text{text}, "%s", reason)
}

// applyFileVault turns fdesetup's state into the volume's facts. Only a
// finished "FileVault is On." is encrypted; everything in between is not
// yet (or no longer) protected at rest.
func applyFileVault(vol *wardv1.Volume, st fvStatus) {
	f, t := false, true
	switch {
	case st.decrypting:
		vol.Encrypted = &f
		vol.Protection = wardv1.Protection_PROTECTION_OFF
		vol.Conversion = wardv1.Conversion_CONVERSION_DECRYPTING
		check.SetVolumeReason(vol, "FileVault is being turned off: decryption in progress", texts.New("reason.filevault_decrypting"))
		if st.percent != nil {
			// fdesetup reports how far decryption got, not how much is
			// still encrypted; the number stays in words.
			pc := strconv.FormatFloat(*st.percent, 'f', -1, 64)
			vol.Reason += fmt.Sprintf(" (%s%% decrypted)", pc)
			vol.ReasonText = append(vol.ReasonText, texts.ToProto([]texts.Text{texts.New("reason.filevault_decrypted_percent", "percent", pc)})...)
		}
	case st.encrypting && st.paused:
		vol.Encrypted = &f
		vol.Protection = wardv1.Protection_PROTECTION_ON
		vol.Conversion = wardv1.Conversion_CONVERSION_ENCRYPTION_PAUSED
		check.SetVolumeReason(vol, "FileVault is on, but encryption is pending (it waits, for example, for the Mac to be plugged in)",
			texts.New("reason.filevault_pending"))
	case st.encrypting:
		vol.Encrypted = &f
		vol.Protection = wardv1.Protection_PROTECTION_ON
		vol.Conversion = wardv1.Conversion_CONVERSION_ENCRYPTING
		vol.PercentEncrypted = st.percent
		check.SetVolumeReason(vol, "FileVault is on and still encrypting the disk", texts.New("reason.filevault_encrypting"))
	case st.on && st.restart != "":
		// "On, but needs to be restarted to finish": not protecting yet.
		vol.Encrypted = &f
		vol.Protection = wardv1.Protection_PROTECTION_OFF
		check.SetVolumeReason(vol, "FileVault is on, but "+st.restart, texts.New("reason.filevault_on_not_active", "detail", st.restart))
	case st.on:
		vol.Encrypted = &t
		vol.Protection = wardv1.Protection_PROTECTION_ON
		vol.Conversion = wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED
	default:
		vol.Encrypted = &f
		vol.Protection = wardv1.Protection_PROTECTION_OFF
		vol.Conversion = wardv1.Conversion_CONVERSION_FULLY_DECRYPTED
		check.SetVolumeReason(vol, "FileVault is off", texts.New("reason.filevault_off"))
		if st.restart != "" {
			vol.Reason += ", but " + st.restart
			vol.ReasonText = texts.ToProto([]texts.Text{texts.New("reason.filevault_off_but", "detail", st.restart)})
		}
	}
	if st.deferred {
		vol.Reason = fvJoin([]string{vol.Reason, "FileVault enablement is deferred until the user next logs in or out"})
		vol.ReasonText = append(vol.ReasonText, texts.ToProto([]texts.Text{texts.New("reason.filevault_deferred")})...)
	}
}

// fvStatus is what fdesetup status said.
type fvStatus struct {
	// on is the headline: "FileVault is On" vs "FileVault is Off".
	on bool
	// restart holds the headline's qualifier after "but", e.g. "needs to
	// be restarted to finish".
	restart string
	// encrypting/decrypting: a conversion is in progress; paused when
	// fdesetup says "Pending" instead of a percentage.
	encrypting, decrypting, paused bool
	percent                        *float64
	deferred                       bool
}

var (
	fvHeadlineRe = regexp.MustCompile(`^FileVault is (On|Off)(?:\.|, but (.+?)\.?)$`)
	fvProgressRe = regexp.MustCompile(`(?i)^(Encryption|Decryption) in progress:\s*(?:Percent completed = ([0-9]+(?:\.[0-9]+)?)|(Pending))\.?$`)
	fvDeferredRe = regexp.MustCompile(`^Deferred enablement appears to be active`)
)

// parseFdesetupStatus parses `fdesetup status`. It needs a headline or a
// progress line; an "Error" line, a contradicting second headline or a
// percentage outside 0..100 is an error. Other lines (fdesetup adds notes
// such as "FileVault master keychain appears to be installed.") are ignored.
func parseFdesetupStatus(data []byte) (fvStatus, error) {
	var st fvStatus
	var headline, progress bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "Error"):
			return fvStatus{}, fmt.Errorf("fdesetup reported %q", check.Shorten(line, 160))
		case fvHeadlineRe.MatchString(line):
			m := fvHeadlineRe.FindStringSubmatch(line)
			on := m[1] == "On"
			if headline && on != st.on {
				return fvStatus{}, errors.New("contradicting FileVault headlines")
			}
			headline = true
			st.on = on
			st.restart = m[2]
		case fvProgressRe.MatchString(line):
			if progress {
				return fvStatus{}, errors.New("more than one progress line")
			}
			progress = true
			m := fvProgressRe.FindStringSubmatch(line)
			if strings.EqualFold(m[1], "Encryption") {
				st.encrypting = true
			} else {
				st.decrypting = true
			}
			if m[3] != "" {
				st.paused = true
			} else {
				p, err := strconv.ParseFloat(m[2], 64)
				if err != nil || p < 0 || p > 100 {
					return fvStatus{}, fmt.Errorf("percentage %q out of range", m[2])
				}
				st.percent = &p
			}
		case fvDeferredRe.MatchString(line):
			st.deferred = true
		}
	}
	if err := sc.Err(); err != nil {
		return fvStatus{}, fmt.Errorf("parse fdesetup status: %w", err)
	}
	if !headline && !progress {
		return fvStatus{}, fmt.Errorf("no FileVault state in %q", check.Shorten(strings.TrimSpace(string(data)), 160))
	}
	if !headline && st.encrypting {
		// Encrypting implies FileVault was turned on.
		st.on = true
	}
	return st, nil
}

func fdesetupStatus(ctx context.Context, src check.Source) (fvStatus, error) {
	res, err := src.Command(ctx, "fdesetup", fdesetupStatusArgs...)
	if err != nil {
		return fvStatus{}, fmt.Errorf("fdesetup status: %w", err)
	}
	if res.ExitCode != 0 {
		line := check.FirstLine(res.Stderr, res.Stdout)
		return fvStatus{}, check.Reasoned(fmt.Sprintf("fdesetup status exited %d: %s", res.ExitCode, line),
			texts.New(check.IDToolFailed, "source", "fdesetup", "detail", line))
	}
	if res.Truncated {
		return fvStatus{}, check.Reasoned("fdesetup status: output truncated", texts.New(check.IDOutputCut, "source", "fdesetup"))
	}
	st, err := parseFdesetupStatus(res.Stdout)
	if err != nil {
		return fvStatus{}, check.Reasoned("fdesetup status: "+err.Error(), check.ParseText("fdesetup", err))
	}
	return st, nil
}

// fdesetupBool runs an fdesetup question that answers "true" or "false".
func fdesetupBool(ctx context.Context, src check.Source, args []string) (bool, error) {
	res, err := src.Command(ctx, "fdesetup", args...)
	if err != nil {
		return false, err
	}
	if res.ExitCode != 0 {
		line := check.FirstLine(res.Stderr, res.Stdout)
		return false, check.Reasoned(fmt.Sprintf("exited %d: %s", res.ExitCode, line),
			texts.New(check.IDToolFailed, "source", "fdesetup", "detail", line))
	}
	switch strings.TrimSpace(string(res.Stdout)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	err = fmt.Errorf("unexpected answer %q", check.Shorten(strings.TrimSpace(string(res.Stdout)), 160))
	return false, check.Reasoned(err.Error(), check.ParseText("fdesetup", err))
}

// apfsVolume is the part of a diskutil APFS volume collectDarwin uses.
type apfsVolume struct {
	device                string
	fileVault, encryption bool
	// legacy is true for a pre-10.15 boot volume (no Data role).
	legacy bool
}

// apfsList is what diskutil apfs list -plist says about the user-data
// volume: data is nil (and note says why) when it cannot be picked.
type apfsList struct {
	data *apfsVolume
	note string
}

func readAPFS(ctx context.Context, src check.Source) (apfsList, error) {
	res, err := src.Command(ctx, "diskutil", diskutilAPFSArgs...)
	if err != nil {
		return apfsList{}, fmt.Errorf("diskutil apfs list: %w", err)
	}
	if res.ExitCode != 0 {
		line := check.FirstLine(res.Stderr, res.Stdout)
		return apfsList{}, check.Reasoned(fmt.Sprintf("diskutil apfs list exited %d: %s", res.ExitCode, line),
			texts.New(check.IDToolFailed, "source", "diskutil", "detail", line))
	}
	if res.Truncated || len(res.Stdout) > maxAPFSPlist {
		return apfsList{}, check.Reasoned("diskutil apfs list: output too large", texts.New(check.IDOutputCut, "source", "diskutil"))
	}
	l, err := parseAPFSList(res.Stdout)
	if err != nil {
		return apfsList{}, check.Reasoned("diskutil apfs list: "+err.Error(), check.ParseText("diskutil", err))
	}
	return l, nil
}

// parseAPFSList finds the volume with the Data role in diskutil apfs list
// -plist. With no Data volume anywhere (macOS before 10.15) the user data
// is on the boot volume, which the plist does not mark; it is picked only
// when exactly one volume carries FileVault or has no role at all among
// the system's usual volumes. Two Data volumes (two macOS installs) are
// ambiguous.
func parseAPFSList(data []byte) (apfsList, error) {
	v, err := plist.Decode(data)
	if err != nil {
		return apfsList{}, err
	}
	top, ok := plist.Dict(v)
	if !ok {
		return apfsList{}, errors.New("top level is not a dict")
	}
	containers, ok := plist.Array(top["Containers"])
	if !ok {
		return apfsList{}, errors.New("no Containers array")
	}
	var dataVols, roleless []apfsVolume
	for _, c := range containers {
		cd, ok := plist.Dict(c)
		if !ok {
			return apfsList{}, errors.New("container is not a dict")
		}
		vols, ok := plist.Array(cd["Volumes"])
		if !ok {
			return apfsList{}, errors.New("container without a Volumes array")
		}
		for _, vv := range vols {
			vd, ok := plist.Dict(vv)
			if !ok {
				return apfsList{}, errors.New("volume is not a dict")
			}
			dev, okDev := plist.String(vd, "DeviceIdentifier")
			fv, okFV := plist.Bool(vd, "FileVault")
			enc, okEnc := plist.Bool(vd, "Encryption")
			if !okDev || !okFV || !okEnc {
				return apfsList{}, errors.New("volume without DeviceIdentifier, FileVault or Encryption")
			}
			roles, _ := plist.Array(vd["Roles"])
			vol := apfsVolume{device: dev, fileVault: fv, encryption: enc}
			switch {
			case hasRole(roles, "Data"):
				dataVols = append(dataVols, vol)
			case len(roles) == 0:
				roleless = append(roleless, vol)
			}
		}
	}
	switch {
	case len(dataVols) == 1:
		return apfsList{data: &dataVols[0]}, nil
	case len(dataVols) > 1:
		return apfsList{note: fmt.Sprintf("diskutil lists %d Data volumes (several macOS installs); cannot tell which one is running", len(dataVols))}, nil
	case len(roleless) == 1:
		roleless[0].legacy = true
		return apfsList{data: &roleless[0]}, nil
	}
	return apfsList{note: "diskutil lists no Data volume and no single boot volume"}, nil
}

func hasRole(roles []any, role string) bool {
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}

func fvJoin(parts []string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
