package osinfo

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// ntCurrentVersion is the registry key (under HKLM) Windows describes its
// version in.
const ntCurrentVersion = `SOFTWARE\Microsoft\Windows NT\CurrentVersion`

// ntVersionValues are the values collectWindows reads from ntCurrentVersion.
var ntVersionValues = []string{
	"ProductName", "EditionID", "DisplayVersion", "ReleaseId",
	"CurrentBuildNumber", "CurrentBuild", "UBR",
	"CurrentMajorVersionNumber", "CurrentMinorVersionNumber",
}

// firstWindows11Build is the first Windows 11 build. Windows 11 still says
// "Windows 10 ..." in ProductName (Microsoft kept the value for
// compatibility), so the build decides.
const firstWindows11Build = 22000

// collectWindows reads the version from the registry.
func collectWindows(ctx context.Context, src check.Source) *wardv1.OSFacts {
	vals := make(map[string]check.RegistryValue)
	var unreadable []string
	var why []texts.Text
	for _, name := range ntVersionValues {
		v, err := src.Registry(ctx, ntCurrentVersion, name)
		switch {
		case err == nil:
			vals[name] = v
		case errors.Is(err, fs.ErrNotExist):
			// Absent: older or newer Windows without this value.
		default:
			unreadable = append(unreadable, name+": "+err.Error())
			why = append(why, check.ErrText(`HKLM\`+ntCurrentVersion+`\`+name, err))
		}
	}
	f := parseWindowsVersion(vals)
	if len(unreadable) > 0 && f.Collection.GetStatus() == wardv1.CollectionStatus_COLLECTION_STATUS_OK {
		f.Collection = check.PartialText(why, "could not read %s", strings.Join(unreadable, "; "))
	} else if len(unreadable) > 0 {
		f.Collection.Reason += "; could not read " + strings.Join(unreadable, "; ")
		f.Collection.ReasonText = append(f.Collection.ReasonText, texts.ToProto(why)...)
	}
	return f
}

// parseWindowsVersion turns the values of ntCurrentVersion into OS facts.
// Values that are absent are not in vals.
func parseWindowsVersion(vals map[string]check.RegistryValue) *wardv1.OSFacts {
	f := &wardv1.OSFacts{Platform: "windows"}
	str := func(name string) string {
		if v, ok := vals[name]; ok && v.String != nil {
			return strings.TrimSpace(*v.String)
		}
		return ""
	}
	num := func(name string) (uint64, bool) {
		if v, ok := vals[name]; ok && v.Integer != nil {
			return *v.Integer, true
		}
		return 0, false
	}
	// missing says in words what is not there, valueNames which
	// registry values (data, for the reason staff read).
	var missing, valueNames []string

	buildStr := str("CurrentBuildNumber")
	if buildStr == "" {
		buildStr = str("CurrentBuild")
	}
	build, err := strconv.ParseUint(buildStr, 10, 32)
	if err != nil {
		build = 0
		missing = append(missing, "the build number")
		valueNames = append(valueNames, "CurrentBuildNumber")
	}

	major, okMajor := num("CurrentMajorVersionNumber")
	minor, okMinor := num("CurrentMinorVersionNumber")
	if build > 0 && okMajor && okMinor && major < 1000 && minor < 1000 {
		f.Version = strconv.FormatUint(major, 10) + "." + strconv.FormatUint(minor, 10) + "." + strconv.FormatUint(build, 10)
		f.Kernel = f.Version
	} else if build > 0 {
		missing = append(missing, "the major and minor version")
		valueNames = append(valueNames, "CurrentMajorVersionNumber", "CurrentMinorVersionNumber")
	}

	if build > 0 {
		if ubr, ok := num("UBR"); ok && ubr < 1<<32 {
			f.Build = strconv.FormatUint(build, 10) + "." + strconv.FormatUint(ubr, 10)
		} else {
			// Without the update build revision the patch level is unknown.
			missing = append(missing, "the update build revision (UBR)")
			valueNames = append(valueNames, "UBR")
		}
	}

	f.Name = str("ProductName")
	if f.Name == "" && str("EditionID") != "" {
		f.Name = "Windows " + str("EditionID")
	}
	if build >= firstWindows11Build && strings.HasPrefix(f.Name, "Windows 10") {
		// Windows 11 reports "Windows 10 Pro" etc. in ProductName.
		f.Name = "Windows 11" + strings.TrimPrefix(f.Name, "Windows 10")
	}
	if f.Name == "" {
		missing = append(missing, "the product name")
		valueNames = append(valueNames, "ProductName")
	}

	// EditionID raw ("Professional", "EnterpriseS"): the release feed's
	// lines are per edition (feed.WindowsEdition maps it).
	f.Edition = str("EditionID")

	f.DisplayVersion = str("DisplayVersion")
	if f.DisplayVersion == "" {
		// Before 20H2 the feature update was named in ReleaseId (e.g. 1909).
		f.DisplayVersion = str("ReleaseId")
	}

	switch {
	case build == 0:
		f.Collection = check.FailedText([]texts.Text{texts.New("reason.os_fields_missing", "source", `HKLM\`+ntCurrentVersion, "fields", "CurrentBuildNumber")},
			"cannot tell the Windows version: the registry key %s holds no build number", ntCurrentVersion)
	case len(missing) > 0:
		f.Collection = check.PartialText([]texts.Text{texts.New("reason.os_fields_missing", "source", `HKLM\`+ntCurrentVersion, "fields", strings.Join(valueNames, ", "))},
			"the registry key %s does not hold %s", ntCurrentVersion, strings.Join(missing, ", "))
	default:
		f.Collection = check.OK()
	}
	return f
}
