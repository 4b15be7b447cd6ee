package osinfo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// osReleasePaths are where os-release(5) lives, in the order systemd reads
// them.
var osReleasePaths = []string{"/etc/os-release", "/usr/lib/os-release"}

// collectLinux reads os-release(5) and the running kernel's release.
func collectLinux(ctx context.Context, src check.Source) *wardv1.OSFacts {
	facts := &wardv1.OSFacts{Platform: "linux"}
	if host, err := src.Host(ctx); err == nil {
		facts.Architecture = host.Arch
	}
	var missing check.Problems
	rel, err := readOSRelease(ctx, src)
	if err != nil {
		missing.Add(err.Error(), check.ErrText("", err))
	} else {
		facts.Name = rel["NAME"]
		facts.Id = rel["ID"]
		facts.Version = rel["VERSION_ID"]
		facts.Build = rel["VERSION"]
		if facts.Build == "" {
			facts.Build = rel["BUILD_ID"]
		}
		if facts.Id == "" {
			missing.Add("os-release has no ID", texts.New("reason.os_fields_missing", "source", "os-release", "fields", "ID"))
		}
	}
	kernel, err := src.ReadFile(ctx, "/proc/sys/kernel/osrelease", 256)
	if err != nil {
		missing.Add(fmt.Sprintf("kernel release: %v", err), check.ErrText("/proc/sys/kernel/osrelease", err))
	} else {
		facts.Kernel = strings.TrimSpace(string(kernel))
	}
	switch {
	case missing.Len() == 0:
		facts.Collection = check.OK()
	case facts.Id == "" && facts.Kernel == "":
		facts.Collection = check.FailedText(missing.Text, "%s", missing.String())
	default:
		facts.Collection = check.PartialText(missing.Text, "%s", missing.String())
	}
	return facts
}

// readOSRelease reads and parses the first os-release file that exists.
func readOSRelease(ctx context.Context, src check.Source) (map[string]string, error) {
	var errs []error
	for _, p := range osReleasePaths {
		data, err := src.ReadFile(ctx, p, 64<<10)
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			break
		}
		rel, err := parseOSRelease(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return rel, nil
	}
	return nil, fmt.Errorf("read os-release: %w", errors.Join(errs...))
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally
// in single or double quotes with shell-style backslash escapes inside
// double quotes. Comments and blank lines are skipped; a file with no
// assignment at all is an error.
func parseOSRelease(data []byte) (map[string]string, error) {
	out := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || !validKey(key) {
			continue
		}
		out[key] = unquote(val)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse os-release: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("parse os-release: no KEY=value lines")
	}
	return out, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

func unquote(v string) string {
	if len(v) >= 2 {
		switch {
		case v[0] == '\'' && v[len(v)-1] == '\'':
			return v[1 : len(v)-1]
		case v[0] == '"' && v[len(v)-1] == '"':
			v = v[1 : len(v)-1]
			var b strings.Builder
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.ContainsRune("\"\\$`", rune(v[i+1])) {
					i++
				}
				b.WriteByte(v[i])
			}
			return b.String()
		}
	}
	return v
}
