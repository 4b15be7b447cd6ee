package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	collectorBinOnce sync.Once
	collectorBin     string
	collectorBinErr  error
)

// builtCollector builds ward-collector once for the docs checks.
func builtCollector(t *testing.T) string {
	t.Helper()
	collectorBinOnce.Do(func() {
		var repo string
		if repo, collectorBinErr = repoRoot(); collectorBinErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "ward-docs-collector-")
		if err != nil {
			collectorBinErr = err
			return
		}
		collectorBin = filepath.Join(dir, "ward-collector")
		cmd := exec.Command("go", "build", "-o", collectorBin, "./collector/cmd/ward-collector")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			collectorBinErr = err
			collectorBin = string(out)
		}
	})
	if collectorBinErr != nil {
		t.Fatalf("build ward-collector: %v\n%s", collectorBinErr, collectorBin)
	}
	return collectorBin
}

// operationsLines are docs/operations.md's code lines and inline code.
func operationsLines(t *testing.T) []string {
	t.Helper()
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repo, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, b := range docBlocks(t, "operations.md") {
		// Join continued lines.
		lines = append(lines, strings.Split(strings.ReplaceAll(strings.Join(b.lines, "\n"), "\\\n", " "), "\n")...)
	}
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(string(raw), -1) {
		lines = append(lines, m[1])
	}
	return lines
}

var (
	collectorCall = regexp.MustCompile(`(^|[\s(])(?:/usr/bin/)?ward-collector\s+([a-z])`)
	// notACommand ends the text before a "ward-collector" that names a
	// user, a container or an image rather than the program.
	notACommand = regexp.MustCompile(`(-u|--name|exec|-v|-t|group|user)\s*$`)
	lineEnd     = regexp.MustCompile(`\s(\||;|&&|>|2>|>>)`)
)

// collectorHelp runs ward-collector SUB... --help, once per SUB.
func collectorHelp(bin string, sub []string) (string, error) {
	key := strings.Join(sub, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helpCache[key]; ok {
		return h.out, h.err
	}
	out, err := exec.Command(bin, append(append([]string{}, sub...), "--help")...).CombinedOutput()
	helpCache[key] = helpOut{string(out), err}
	return string(out), err
}

type helpOut struct {
	out string
	err error
}

var (
	helpMu    sync.Mutex
	helpCache = map[string]helpOut{}
)

// TestOperationsDocCommandsExist checks every ward-collector command line
// of docs/operations.md (code blocks and inline code), and the serve
// options in WARD_COLLECTOR_OPTS lines, against the real program: each
// subcommand exists and takes each flag given.
func TestOperationsDocCommandsExist(t *testing.T) {
	bin := builtCollector(t)
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	checkFlags := func(line string, sub []string, rest string) {
		t.Helper()
		help, err := collectorHelp(bin, sub)
		if err != nil {
			t.Errorf("docs/operations.md: %q: ward-collector %s --help: %v\n%s", line, strings.Join(sub, " "), err, help)
			return
		}
		for _, f := range flagName.FindAllStringSubmatch(rest, -1) {
			if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(f[1]) + `\b`).MatchString(help) {
				t.Errorf("docs/operations.md: %q: ward-collector %s has no flag %s", line, strings.Join(sub, " "), f[1])
			}
		}
		checked++
	}
	for _, line := range operationsLines(t) {
		if strings.Contains(line, "go run ./installer/build") {
			checkBuildFlags(t, repo, line)
			continue
		}
		if opts, ok := strings.CutPrefix(strings.TrimSpace(line), "WARD_COLLECTOR_OPTS="); ok {
			checkFlags(line, []string{"serve"}, opts)
			continue
		}
		// Matches may overlap ("exec ward-collector ward-collector token"):
		// search again from just after each one's start.
		for pos := 0; pos < len(line); {
			loc := collectorCall.FindStringSubmatchIndex(line[pos:])
			if loc == nil {
				break
			}
			for i := range loc {
				if loc[i] >= 0 {
					loc[i] += pos
				}
			}
			pos = loc[3] + 1
			if notACommand.MatchString(line[:loc[3]]) {
				continue
			}
			rest := line[loc[4]:]
			if m := lineEnd.FindStringIndex(rest); m != nil {
				rest = rest[:m[0]]
			}
			if i := strings.Index(rest, " ward-collector "); i >= 0 {
				rest = rest[:i] // a second command on the line is checked on its own
			}
			words := strings.Fields(rest)
			var sub []string
			for _, w := range words {
				if !regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(w) {
					break
				}
				help, err := collectorHelp(bin, append(sub, w))
				if err != nil || !strings.Contains(help, "ward-collector "+strings.Join(append(sub, w), " ")) {
					break
				}
				sub = append(sub, w)
			}
			if len(sub) == 0 {
				t.Errorf("docs/operations.md: %q: ward-collector has no command %q", line, words[0])
				continue
			}
			checkFlags(line, sub, rest)
		}
	}
	if checked < 12 {
		t.Errorf("checked %d ward-collector command lines; the parser lost some", checked)
	}
}

// TestOperationsDocMetrics scrapes a real collector's /metrics and holds
// docs/operations.md's table of series to it: every series the collector
// exports is in the table with its type, and the document names no
// series that does not exist.
func TestOperationsDocMetrics(t *testing.T) {
	bin := builtCollector(t)
	cmd := exec.Command(bin, "serve", "--data", filepath.Join(t.TempDir(), "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	var metricsURL string
	sc := bufio.NewScanner(pr)
	re := regexp.MustCompile(`metrics: (http://\S+/metrics)\)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			metricsURL = m[1]
			break
		}
	}
	if metricsURL == "" {
		t.Fatal("collector printed no metrics address")
	}
	go io.Copy(io.Discard, pr)
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(metricsURL)
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", metricsURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	exported := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (ward_collector_\w+) (\w+)$`).FindAllStringSubmatch(string(body), -1) {
		exported[m[1]] = m[2]
	}
	if len(exported) < 5 {
		t.Fatalf("only %d ward_collector series in /metrics:\n%s", len(exported), body)
	}
	repo, _ := repoRoot()
	doc, err := os.ReadFile(filepath.Join(repo, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(ward_collector_\\w+)` \\| (\\w+) \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = m[2]
	}
	var names []string
	for n := range exported {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if documented[n] != exported[n] {
			t.Errorf("docs/operations.md's table of series: %s is a %s in /metrics, documented as %q", n, exported[n], documented[n])
		}
	}
	for _, m := range regexp.MustCompile(`ward_collector_\w+`).FindAllString(string(doc), -1) {
		base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(m, "")
		if _, ok := exported[base]; !ok {
			t.Errorf("docs/operations.md names %s, which /metrics does not export", m)
		}
	}
}

// opsScript returns the block of docs/operations.md marked name, sudo
// dropped (the install test runs as root).
func opsScript(t *testing.T, name string) string {
	t.Helper()
	for _, b := range docBlocks(t, "operations.md") {
		if b.name == name {
			s := strings.Join(b.lines, "\n") + "\n"
			return regexp.MustCompile(`(?m)(^|\|\s*)sudo `).ReplaceAllString(s, "$1")
		}
	}
	t.Fatalf("docs/operations.md has no block marked <!-- test: %s -->", name)
	return ""
}
