package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// docBlock is a code block of docs/install.md: its lines and, when an
// HTML comment `<!-- test: NAME -->` comes just before it, the name under
// which TestDebInstallUpgradePurge runs it on this machine.
type docBlock struct {
	name  string
	line  int // of its first line, 1-based
	lines []string
}

var testMarker = regexp.MustCompile(`^<!-- test: ([a-z0-9-]+) -->$`)

// installDoc parses the code blocks (indented by four spaces, or fenced)
// of docs/install.md.
func installDoc(t *testing.T) []docBlock {
	t.Helper()
	return docBlocks(t, "install.md")
}

// docBlocks parses the code blocks of docs/NAME.
func docBlocks(t *testing.T, name string) []docBlock {
	t.Helper()
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(repo, "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks  []docBlock
		cur     *docBlock
		marker  string
		fenced  bool
		prevBlk bool // the previous line was blank or a marker
		n       int
	)
	flush := func() {
		if cur != nil {
			blocks = append(blocks, *cur)
			cur = nil
		}
	}
	sc := bufio.NewScanner(f)
	prevBlk = true
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case fenced:
			if strings.HasPrefix(line, "```") {
				fenced = false
				flush()
				continue
			}
			cur.lines = append(cur.lines, line)
			continue
		case strings.HasPrefix(line, "```"):
			flush()
			fenced = true
			cur = &docBlock{name: marker, line: n + 1}
			marker = ""
			continue
		case strings.HasPrefix(line, "    ") && (cur != nil || prevBlk):
			if cur == nil {
				cur = &docBlock{name: marker, line: n}
				marker = ""
			}
			cur.lines = append(cur.lines, line[4:])
			continue
		case strings.TrimSpace(line) == "" && cur != nil:
			cur.lines = append(cur.lines, "")
			continue
		}
		flush()
		if m := testMarker.FindStringSubmatch(line); m != nil {
			marker = m[1]
		} else if strings.TrimSpace(line) != "" {
			marker = ""
		}
		prevBlk = strings.TrimSpace(line) == "" || testMarker.MatchString(line)
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range blocks {
		for len(blocks[i].lines) > 0 && blocks[i].lines[len(blocks[i].lines)-1] == "" {
			blocks[i].lines = blocks[i].lines[:len(blocks[i].lines)-1]
		}
	}
	return blocks
}

// docScript returns the block named name as a shell script for this
// machine: sudo dropped (the tests run as root; this machine has none) and
// X.Y.Z replaced by version.
func docScript(t *testing.T, name, version string) string {
	t.Helper()
	for _, b := range installDoc(t) {
		if b.name == name {
			s := strings.Join(b.lines, "\n") + "\n"
			s = regexp.MustCompile(`(?m)(^|\|\s*)sudo `).ReplaceAllString(s, "$1")
			return strings.ReplaceAll(s, "X.Y.Z", version)
		}
	}
	t.Fatalf("docs/install.md has no block marked <!-- test: %s -->", name)
	return ""
}

// TestInstallDocMarksTheBlocksItRuns guards the runnable blocks: each one
// TestDebInstallUpgradePurge runs is there, and lost a sudo only.
func TestInstallDocMarksTheBlocksItRuns(t *testing.T) {
	names := map[string]bool{}
	for _, b := range installDoc(t) {
		if b.name != "" {
			names[b.name] = true
		}
	}
	for _, want := range []string{"linux-install", "linux-hand-run", "verify", "linux-remove", "linux-purge"} {
		if !names[want] {
			t.Errorf("docs/install.md: no block marked %q", want)
		}
	}
	if got := docScript(t, "linux-hand-run", "1.0.0"); got != "sh -c 'nohup /usr/bin/ward-agent daemon --state /var/lib/ward >>/var/log/ward-agent.log 2>&1 </dev/null &'\n" {
		t.Errorf("linux-hand-run = %q", got)
	}
}

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

// builtAgent builds ward-agent once for the docs checks.
func builtAgent(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		var repo string
		if repo, agentErr = repoRoot(); agentErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "ward-docs-")
		if err != nil {
			agentErr = err
			return
		}
		agentBin = filepath.Join(dir, "ward-agent")
		cmd := exec.Command("go", "build", "-o", agentBin, "./agent/cmd/ward-agent")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			agentErr = err
			agentBin = string(out)
		}
	})
	if agentErr != nil {
		t.Fatalf("build ward-agent: %v\n%s", agentErr, agentBin)
	}
	return agentBin
}

var (
	agentCall = regexp.MustCompile(`(?:^|[\s|;&(])(?:sudo\s+)?(?:/usr/local/bin/|/usr/bin/)?ward-agent((?:\s+[a-z][a-z-]*)*)((?:\s+\S+)*)`)
	flagName  = regexp.MustCompile(`(?:^|\s)(--[a-z][a-z-]*)`)
)

// TestInstallDocCommandsExist checks every ward-agent command line in
// docs/install.md, in code blocks and inline code, against the real
// program: the subcommand exists (its --help succeeds and names it) and
// takes each flag given. `go run ./installer/build` lines are checked
// against this tool's flags.
func TestInstallDocCommandsExist(t *testing.T) {
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repo, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, b := range installDoc(t) {
		cmds = append(cmds, b.lines...)
	}
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(string(raw), -1) {
		cmds = append(cmds, m[1])
	}
	bin := builtAgent(t)
	checked := 0
	for _, line := range cmds {
		line, _, _ = strings.Cut(line, " #")
		if strings.Contains(line, "go run ./installer/build") {
			checkBuildFlags(t, repo, line)
			continue
		}
		m := agentCall.FindStringSubmatch(line)
		if m == nil || strings.Contains(line, "ward-agent.") || strings.Contains(line, "ward-agent_") || strings.Contains(line, "ward-agent-") {
			continue // a file name, not a command
		}
		words := strings.Fields(m[1])
		// The subcommand path is the leading words that name commands.
		var sub []string
		for _, w := range words {
			args := append(append([]string{}, sub...), w, "--help")
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "ward-agent "+strings.Join(append(sub, w), " ")) {
				break
			}
			sub = append(sub, w)
		}
		if len(words) > 0 && len(sub) == 0 {
			t.Errorf("docs/install.md: %q: ward-agent has no command %q", line, words[0])
			continue
		}
		help, err := exec.Command(bin, append(sub, "--help")...).CombinedOutput()
		if err != nil {
			t.Errorf("docs/install.md: %q: ward-agent %s --help: %v\n%s", line, strings.Join(sub, " "), err, help)
			continue
		}
		for _, f := range flagName.FindAllStringSubmatch(m[1]+m[2], -1) {
			if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(f[1]) + `\b`).Match(help) {
				t.Errorf("docs/install.md: %q: ward-agent %s has no flag %s", line, strings.Join(sub, " "), f[1])
			}
		}
		checked++
	}
	if checked < 8 {
		t.Errorf("checked %d ward-agent command lines; the parser lost some", checked)
	}
}

// checkBuildFlags checks a `go run ./installer/build ...` line against the
// flags main defines.
func checkBuildFlags(t *testing.T, repo, line string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, "installer", "build", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`flag\.\w+Var\([^,]+, "([a-z-]+)"`).FindAllStringSubmatch(string(src), -1) {
		defined[m[1]] = true
	}
	_, rest, _ := strings.Cut(line, "go run ./installer/build")
	for _, m := range regexp.MustCompile(`(?:^|\s)-([a-z][a-z-]*)`).FindAllStringSubmatch(rest, -1) {
		if !defined[m[1]] {
			t.Errorf("docs/install.md: %q: installer/build has no flag -%s", line, m[1])
		}
	}
}
