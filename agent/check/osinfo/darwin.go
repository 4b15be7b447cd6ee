package osinfo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// swVers is what sw_vers(1) prints: the product name and version, the
// Rapid Security Response suffix (ProductVersionExtra, e.g. "(a)", macOS 13
// and later, only while one is applied) and the build.
type swVers struct {
	ProductName, ProductVersion, ProductVersionExtra, BuildVersion string
}

// productVersionRe is a macOS marketing version: 10.13, 10.15.7, 14.6.1, 26.
var productVersionRe = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){0,2}$`)

// collectDarwin reads the version from sw_vers and the kernel release from
// uname -r (or sysctl kern.osrelease).
func collectDarwin(ctx context.Context, src check.Source) *wardv1.OSFacts {
	facts := &wardv1.OSFacts{Platform: "darwin"}
	if host, err := src.Host(ctx); err == nil {
		facts.Architecture = host.Arch
	}
	var missing check.Problems
	v, err := readSwVers(ctx, src)
	if err != nil {
		missing.Add(err.Error(), check.ErrText("", err))
	} else {
		facts.Name = v.ProductName
		facts.Version = v.ProductVersion
		facts.Build = v.BuildVersion
		// DisplayVersion is what the user sees in About This Mac: the
		// version with the Rapid Security Response suffix, "13.3.1 (a)".
		facts.DisplayVersion = strings.TrimSpace(v.ProductVersion + " " + v.ProductVersionExtra)
		if v.ProductName == "" {
			missing.Add("sw_vers printed no ProductName", texts.New("reason.os_fields_missing", "source", "sw_vers", "fields", "ProductName"))
		}
		if v.BuildVersion == "" {
			missing.Add("sw_vers printed no BuildVersion", texts.New("reason.os_fields_missing", "source", "sw_vers", "fields", "BuildVersion"))
		}
	}
	kernel, err := darwinKernel(ctx, src)
	if err != nil {
		missing.Add(err.Error(), check.ErrText("", err))
	} else {
		facts.Kernel = kernel
	}
	switch {
	case missing.Len() == 0:
		facts.Collection = check.OK()
	case facts.Version == "":
		facts.Collection = check.FailedText(missing.Text, "%s", missing.String())
	default:
		facts.Collection = check.PartialText(missing.Text, "%s", missing.String())
	}
	return facts
}

func readSwVers(ctx context.Context, src check.Source) (swVers, error) {
	res, err := src.Command(ctx, "sw_vers")
	if err != nil {
		return swVers{}, fmt.Errorf("sw_vers: %w", err)
	}
	if res.ExitCode != 0 {
		return swVers{}, fmt.Errorf("sw_vers exited %d: %s", res.ExitCode, check.FirstLine(res.Stderr))
	}
	v, err := parseSwVers(res.Stdout)
	if err != nil {
		return swVers{}, fmt.Errorf("sw_vers: %w", err)
	}
	return v, nil
}

// parseSwVers parses sw_vers' "Key:<tabs>value" lines. Unknown keys (such
// as ReleaseType on betas) are ignored; a missing or malformed
// ProductVersion, or a key given twice with different values, is an error.
func parseSwVers(data []byte) (swVers, error) {
	var v swVers
	fields := map[string]*string{
		"ProductName":         &v.ProductName,
		"ProductVersion":      &v.ProductVersion,
		"ProductVersionExtra": &v.ProductVersionExtra,
		"BuildVersion":        &v.BuildVersion,
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), 64<<10)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		dst, known := fields[strings.TrimSpace(key)]
		if !known {
			continue
		}
		val = strings.TrimSpace(val)
		if *dst != "" && *dst != val {
			return swVers{}, fmt.Errorf("%s given twice (%q, %q)", strings.TrimSpace(key), *dst, val)
		}
		*dst = val
	}
	if err := sc.Err(); err != nil {
		return swVers{}, fmt.Errorf("parse sw_vers: %w", err)
	}
	if v.ProductVersion == "" {
		return swVers{}, errors.New("no ProductVersion in the output")
	}
	if !productVersionRe.MatchString(v.ProductVersion) {
		return swVers{}, fmt.Errorf("ProductVersion %q is not a macOS version", v.ProductVersion)
	}
	return v, nil
}

// kernelReleaseRe is a Darwin kernel release: 23.6.0.
var kernelReleaseRe = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){1,2}$`)

// darwinKernel returns the kernel release from uname -r, or from
// sysctl -n kern.osrelease when uname cannot be run.
func darwinKernel(ctx context.Context, src check.Source) (string, error) {
	var errs []string
	for _, argv := range [][]string{{"uname", "-r"}, {"sysctl", "-n", "kern.osrelease"}} {
		res, err := src.Command(ctx, argv[0], argv[1:]...)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("%s: %v", strings.Join(argv, " "), err))
		case res.ExitCode != 0:
			errs = append(errs, fmt.Sprintf("%s exited %d", strings.Join(argv, " "), res.ExitCode))
		default:
			rel := strings.TrimSpace(string(res.Stdout))
			if kernelReleaseRe.MatchString(rel) {
				return rel, nil
			}
			errs = append(errs, fmt.Sprintf("%s printed %q, not a kernel release", strings.Join(argv, " "), check.Shorten(rel, 40)))
		}
	}
	return "", fmt.Errorf("kernel release: %s", strings.Join(errs, "; "))
}
