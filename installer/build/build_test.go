package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Packages are built once per test binary: version 1.0.0 in every format.
var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func ci() bool { return os.Getenv("CI") == "true" }

// need skips (or under CI=true fails) when a tool is missing.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if ci() {
				t.Fatalf("%s is required under CI=true (apt-get install wixl msitools rpm)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func packages(t *testing.T) string {
	t.Helper()
	need(t, "wixl")
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ward-dist-")
		if buildErr == nil {
			_, buildErr = Build(context.Background(), Options{Version: "1.0.0", Out: buildDir, Arch: "amd64",
				Formats: []string{"deb", "rpm", "msi", "macos"}})
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if collectorDir != "" {
		os.RemoveAll(collectorDir)
	}
	os.Exit(code)
}

func cmdOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDebContents(t *testing.T) {
	need(t, "dpkg-deb")
	deb := filepath.Join(packages(t), "ward-agent_1.0.0_amd64.deb")
	list := cmdOut(t, "dpkg-deb", "-c", deb)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^-rwxr-xr-x root/root .* \./usr/bin/ward-agent$`),
		regexp.MustCompile(`(?m)^-rw-r--r-- root/root .* \./lib/systemd/system/ward-agent\.service$`),
		regexp.MustCompile(`(?m)^-rw-r--r-- root/root .* \./etc/xdg/autostart/ward-notify\.desktop$`),
		regexp.MustCompile(`(?m)^drwx------ root/root .* \./var/lib/ward/$`),
	} {
		if !want.MatchString(list) {
			t.Errorf("dpkg-deb -c: no line matching %s in\n%s", want, list)
		}
	}
	info := cmdOut(t, "dpkg-deb", "-I", deb)
	for _, want := range []string{"Package: ward-agent", "Version: 1.0.0", "Architecture: amd64", "postinst", "prerm", "postrm", "preinst"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	unit := cmdOut(t, "dpkg-deb", "--fsys-tarfile", deb)
	if !strings.Contains(unit, "ExecStart=/usr/bin/ward-agent daemon --state /var/lib/ward") {
		t.Error("systemd unit does not run the daemon with the state directory")
	}
	if !strings.Contains(unit, "Exec=/usr/bin/ward-agent notify") {
		t.Error("autostart entry does not run the notifier")
	}
}

func TestRPMContents(t *testing.T) {
	need(t, "rpm")
	rpm := filepath.Join(packages(t), "ward-agent-1.0.0-1.x86_64.rpm")
	list := cmdOut(t, "rpm", "-qlp", rpm)
	for _, want := range []string{"/usr/bin/ward-agent", "/usr/lib/systemd/system/ward-agent.service",
		"/etc/xdg/autostart/ward-notify.desktop", "/var/lib/ward"} {
		if !strings.Contains(list, want+"\n") {
			t.Errorf("rpm -qlp lacks %s:\n%s", want, list)
		}
	}
	scripts := cmdOut(t, "rpm", "-qp", "--scripts", rpm)
	for _, want := range []string{"postinstall scriptlet", "preuninstall scriptlet", "/etc/ward/enroll.env", "systemctl stop ward-agent.service"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm --scripts lacks %q", want)
		}
	}
	perms := cmdOut(t, "rpm", "-qp", "--dump", rpm)
	if !regexp.MustCompile(`(?m)^/var/lib/ward \d+ \d+ 0+ 040700 root root `).MatchString(perms) {
		t.Errorf("/var/lib/ward is not 0700 in the rpm:\n%s", perms)
	}
}

func msiTable(t *testing.T, msi, table string) []string {
	t.Helper()
	out := strings.ReplaceAll(cmdOut(t, "msiinfo", "export", msi, table), "\r\n", "\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 {
		t.Fatalf("msiinfo export %s: no rows:\n%s", table, out)
	}
	return lines[3:]
}

func TestMSITables(t *testing.T) {
	need(t, "msiinfo")
	msi := filepath.Join(packages(t), "ward-agent-1.0.0-amd64.msi")
	svc := msiTable(t, msi, "ServiceInstall")
	if len(svc) != 1 {
		t.Fatalf("ServiceInstall rows = %q", svc)
	}
	f := strings.Split(svc[0], "\t")
	// Name, DisplayName, ServiceType, StartType, ErrorControl, ..., StartName, Password, Arguments, Component_
	if f[1] != "ward-agent" || f[3] != "16" || f[4] != "2" || f[8] != "LocalSystem" ||
		f[10] != `daemon --state "[CommonAppDataFolder]Ward"` || f[11] != "Agent" {
		t.Errorf("ServiceInstall = %q", f)
	}
	// The service's image is the component's key file in Program Files\Ward.
	file := strings.Join(msiTable(t, msi, "File"), "\n")
	if !strings.Contains(file, "agentexe\tAgent\tward-agent.exe") {
		t.Errorf("File table:\n%s", file)
	}
	dirs := strings.Join(msiTable(t, msi, "Directory"), "\n")
	if !strings.Contains(dirs, "INSTALLDIR\tProgramFiles64Folder\tWard") {
		t.Errorf("Directory table:\n%s", dirs)
	}
	ca := strings.Join(msiTable(t, msi, "CustomAction"), "\n")
	if !strings.Contains(ca, `Enrol	3090	agentexe	install --no-start --collector "[COLLECTOR]" --token "[TOKEN]"`) ||
		!strings.Contains(ca, `--program "[INSTALLDIR]ward-agent.exe"`) {
		t.Errorf("enrolment custom action (deferred, as SYSTEM, quoted paths):\n%s", ca)
	}
	reg := strings.Join(msiTable(t, msi, "Registry"), "\n")
	if !strings.Contains(reg, "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\torg.wardhq.ward.notify\t\"[INSTALLDIR]ward-agent.exe\" notify") {
		t.Errorf("notifier Run key (quoted path):\n%s", reg)
	}
	seq := strings.Join(msiTable(t, msi, "InstallExecuteSequence"), "\n")
	// Enrolment runs after the service is installed and before it starts
	// (InstallServices 5800, StartServices 5900).
	if !strings.Contains(seq, "\nEnrol\tNOT REMOVE AND TOKEN\t5850\n") || !strings.Contains(seq, "\nInstallServices\tVersionNT\t5800\n") ||
		!strings.Contains(seq, "\nStartServices\tVersionNT\t5900\n") {
		t.Errorf("InstallExecuteSequence: enrolment not between InstallServices and StartServices:\n%s", seq)
	}
	props := strings.Join(msiTable(t, msi, "Property"), "\n")
	if !strings.Contains(props, "MsiHiddenProperties\tTOKEN") || !strings.Contains(props, "ProductVersion\t1.0.0") {
		t.Errorf("Property table:\n%s", props)
	}
}

func TestMacOSPayload(t *testing.T) {
	list := cmdOut(t, "tar", "-tvzf", filepath.Join(packages(t), "ward-agent-1.0.0-macos-arm64.tar.gz"))
	for _, want := range []string{"./root/usr/local/bin/ward-agent", "./root/Library/LaunchDaemons/org.wardhq.ward.agent.plist",
		"./root/Library/LaunchAgents/org.wardhq.ward.notify.plist", "./scripts/postinstall", "./build-pkg.sh"} {
		if !strings.Contains(list, " "+want+"\n") {
			t.Errorf("macOS payload lacks %s:\n%s", want, list)
		}
	}
}

func TestRefusesBadVersion(t *testing.T) {
	if _, err := Build(context.Background(), Options{Version: "v1", Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "MAJOR.MINOR.PATCH") {
		t.Errorf("err = %v", err)
	}
}

// collector is a ward-collector serve process on loopback ports.
type collector struct {
	bin, data, addr, fingerprint string
}

func startCollector(t *testing.T, repo string) *collector {
	t.Helper()
	dir := t.TempDir()
	c := &collector{bin: filepath.Join(dir, "ward-collector"), data: filepath.Join(dir, "data")}
	build := exec.Command("go", "build", "-o", c.bin, "./collector/cmd/ward-collector")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build collector: %v\n%s", err, out)
	}
	cmd := exec.Command(c.bin, "serve", "--data", c.data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); pr.Close() })
	fp := regexp.MustCompile(`^CA fingerprint: (sha256:[0-9a-f]+)$`)
	addr := regexp.MustCompile(`^gRPC on (\S+), HTTP on`)
	sc := bufio.NewScanner(pr)
	var log strings.Builder
	for (c.fingerprint == "" || c.addr == "") && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := fp.FindStringSubmatch(sc.Text()); m != nil {
			c.fingerprint = m[1]
		}
		if m := addr.FindStringSubmatch(sc.Text()); m != nil {
			c.addr = m[1]
		}
	}
	if c.fingerprint == "" || c.addr == "" {
		t.Fatalf("collector did not start:\n%s", log.String())
	}
	go io.Copy(io.Discard, pr)
	return c
}

func (c *collector) token(t *testing.T) string {
	out := cmdOut(t, c.bin, "token", "create", "--data", c.data, "--group", "laptops", "--uses", "1", "--ttl", "1h", "--json")
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token create: %v: %s", err, out)
	}
	return tok.Token
}

// TestDebInstallUpgradePurge installs the real .deb on this machine, whose
// PID 1 is not systemd, by running docs/install.md's blocks: enrolment
// against a real collector through /etc/ward/enroll.env, the daemon started
// by hand as documented, `status --service` reporting it, an upgrade with
// the daemon running (it must be stopped and started again on the new
// program, never left on the deleted one), a refused downgrade, remove
// (the daemon stops, state stays) and purge. It changes the machine, so it
// runs only as root with WARD_INSTALL_TESTS=1 or CI=true.
func TestDebInstallUpgradePurge(t *testing.T) {
	if os.Getenv("WARD_INSTALL_TESTS") != "1" && !ci() {
		t.Skip("changes this machine (dpkg, /etc/ward, /var/lib/ward): set WARD_INSTALL_TESTS=1")
	}
	if os.Geteuid() != 0 {
		if ci() {
			t.Fatal("the install test needs root under CI=true")
		}
		t.Skip("needs root")
	}
	need(t, "dpkg", "dpkg-deb", "apt-get", "setsid")
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		// The package would start ward-agent.service; CI's machines have
		// no systemd.
		if ci() {
			t.Fatal("systemd runs on this machine: this test is about machines without it")
		}
		t.Skip("systemd runs on this machine: this test is about machines without it")
	}
	if exec.Command("dpkg", "-s", "ward-agent").Run() == nil {
		t.Fatal("ward-agent is already installed on this machine; not touching it")
	}
	for _, p := range []string{"/var/lib/ward", "/etc/ward", "/var/log/ward-agent.log"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists; not touching it", p)
		}
	}
	if pids := wardDaemons(); len(pids) > 0 {
		t.Fatalf("ward-agent daemons already run on this machine (pids %v); not touching them", pids)
	}
	dist := packages(t)
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.1.0", "1.2.0", "1.3.0"} {
		if _, err := Build(context.Background(), Options{Version: v, Out: dist, Arch: "amd64", Formats: []string{"deb"}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile("/var/log/ward-agent.log")
			t.Logf("/var/log/ward-agent.log:\n%s", log)
		}
		for _, pid := range wardDaemons() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if out, err := exec.Command("dpkg", "--purge", "ward-agent").CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
		os.RemoveAll("/etc/ward")
		os.RemoveAll("/var/lib/ward")
		os.Remove("/var/log/ward-agent.log")
	})
	c := startCollector(t, repo)
	env := []string{"COLLECTOR=" + c.addr, "TOKEN=" + c.token(t), "CA_FINGERPRINT=" + c.fingerprint,
		"PATH=" + filepath.Dir(c.bin) + ":" + os.Getenv("PATH"), "DEBIAN_FRONTEND=noninteractive"}

	// Install 1.0.0 as docs/install.md says: enroll.env, then the package.
	out := shDoc(t, dist, docScript(t, "linux-install", "1.0.0"), env)
	if !strings.Contains(out, "systemd is not running on this machine, so no service was started.") ||
		!strings.Contains(out, "in the background: nohup /usr/bin/ward-agent daemon --state /var/lib/ward >>/var/log/ward-agent.log 2>&1 </dev/null &") {
		t.Errorf("install without systemd did not say how to run the daemon:\n%s", out)
	}
	if !strings.Contains(out, "enrolled as ") {
		t.Errorf("install did not enrol:\n%s", out)
	}
	for path, want := range map[string]os.FileMode{
		"/usr/bin/ward-agent":                    0o755,
		"/var/lib/ward":                          0o700 | os.ModeDir,
		"/var/lib/ward/device.key":               0o600,
		"/var/lib/ward/device.crt":               0o644,
		"/var/lib/ward/device.json":              0o644,
		"/etc/xdg/autostart/ward-notify.desktop": 0o644,
		"/lib/systemd/system/ward-agent.service": 0o644,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("after install: %v", err)
			continue
		}
		if st.Mode()&(os.ModePerm|os.ModeDir) != want {
			t.Errorf("%s mode = %v, want %v", path, st.Mode(), want)
		}
	}
	if _, err := os.Stat("/etc/ward/enroll.env"); !os.IsNotExist(err) {
		t.Errorf("enroll.env (with the token) left behind after enrolment: %v", err)
	}
	var dev struct {
		DeviceID string `json:"device_id"`
	}
	raw, err := os.ReadFile("/var/lib/ward/device.json")
	if err != nil || json.Unmarshal(raw, &dev) != nil || dev.DeviceID == "" {
		t.Fatalf("device.json: %v %s", err, raw)
	}
	if pids := wardDaemons(); len(pids) > 0 {
		t.Errorf("the package started daemons %v without being asked", pids)
	}

	// A report waits in the outbox when the upgrade comes: same device,
	// same queue.
	queued := queueReport(t)
	out = cmdOut(t, "dpkg", "-i", filepath.Join(dist, "ward-agent_1.1.0_amd64.deb"))
	if v := strings.TrimSpace(cmdOut(t, "/usr/bin/ward-agent", "version")); v != "1.1.0" {
		t.Errorf("after upgrade, version = %q; dpkg said:\n%s", v, out)
	}
	raw2, _ := os.ReadFile("/var/lib/ward/device.json")
	if string(raw2) != string(raw) {
		t.Errorf("device.json changed on upgrade:\n%s\nwas\n%s", raw2, raw)
	}
	if got := outboxEntries(t); strings.Join(got, ",") != strings.Join(queued, ",") {
		t.Errorf("outbox after upgrade = %q, want %q", got, queued)
	}

	// The daemon, run by hand as documented, delivers the queue; the
	// documented check reports it from the daemon.
	shDoc(t, dist, docScript(t, "linux-hand-run", ""), env)
	pid1 := daemonPID(t)
	verify := strings.ReplaceAll(docScript(t, "verify", ""), "DATA", c.data)
	shUntil(t, verify, env, regexp.MustCompile(`(?s)^service:  running \(pid `+strconv.Itoa(pid1)+`, version 1\.1\.0, since [^)]+\)\n`+
		`last delivery: delivered \d+ reports? at [^,]+, none waiting\nenrolled: `+dev.DeviceID+` .*\n.*`+dev.DeviceID))
	if exe := procExe(pid1); exe != "/usr/bin/ward-agent" {
		t.Errorf("hand-run daemon's program = %q", exe)
	}

	// Upgrade with the daemon running: it is stopped and started again on
	// the new program.
	out = cmdOut(t, "dpkg", "-i", filepath.Join(dist, "ward-agent_1.2.0_amd64.deb"))
	if !strings.Contains(out, "ward-agent: stopped the daemon (pid "+strconv.Itoa(pid1)+")") ||
		!regexp.MustCompile(`ward-agent: started the daemon again on the new program \(pid \d+\), logging to /var/log/ward-agent.log`).MatchString(out) {
		t.Errorf("upgrade with a hand-run daemon:\n%s", out)
	}
	pid2 := daemonPID(t)
	if pid2 == pid1 || running(pid1) {
		t.Errorf("after the upgrade the old daemon (pid %d) runs or was not replaced (pid %d)", pid1, pid2)
	}
	if exe := procExe(pid2); exe != "/usr/bin/ward-agent" {
		t.Errorf("daemon after the upgrade runs %q, want /usr/bin/ward-agent", exe)
	}
	shUntil(t, verify, env, regexp.MustCompile(`^service:  running \(pid `+strconv.Itoa(pid2)+`, version 1\.2\.0, `))
	if pids := wardDaemons(); len(pids) != 1 || pids[0] != pid2 {
		t.Errorf("ward-agent daemons after the upgrade = %v, want [%d]", pids, pid2)
	}

	// Upgrade from a package whose prerm did not stop a hand-run daemon
	// (those built before this one): the postinst finds it on the deleted
	// program and starts it again on the new one.
	if err := os.WriteFile("/var/lib/dpkg/info/ward-agent.prerm", []byte(prermWithoutHandRun), 0o755); err != nil {
		t.Fatal(err)
	}
	out = cmdOut(t, "dpkg", "-i", filepath.Join(dist, "ward-agent_1.3.0_amd64.deb"))
	if !strings.Contains(out, "ward-agent: stopped the daemon (pid "+strconv.Itoa(pid2)+")") ||
		!strings.Contains(out, "ward-agent: started the daemon again on the new program (pid ") {
		t.Errorf("upgrade from a prerm that left the daemon running:\n%s", out)
	}
	pid2b := daemonPID(t)
	if pid2b == pid2 || running(pid2) || procExe(pid2b) != "/usr/bin/ward-agent" {
		t.Errorf("after the upgrade: old daemon %d running %v, new daemon %d runs %q", pid2, running(pid2), pid2b, procExe(pid2b))
	}
	shUntil(t, verify, env, regexp.MustCompile(`^service:  running \(pid `+strconv.Itoa(pid2b)+`, version 1\.3\.0, `))

	// Downgrade is refused, leaves 1.3.0 in place and its daemon running
	// on it.
	if out, err := exec.Command("dpkg", "-i", filepath.Join(dist, "ward-agent_1.0.0_amd64.deb")).CombinedOutput(); err == nil || !strings.Contains(string(out), "refusing to downgrade") {
		t.Errorf("downgrade: err %v\n%s", err, out)
	}
	if v := strings.TrimSpace(cmdOut(t, "/usr/bin/ward-agent", "version")); v != "1.3.0" {
		t.Errorf("after refused downgrade, version = %q", v)
	}
	pid3 := daemonPID(t)
	shUntil(t, verify, env, regexp.MustCompile(`^service:  running \(pid `+strconv.Itoa(pid3)+`, version 1\.3\.0, `))
	if exe := procExe(pid3); exe != "/usr/bin/ward-agent" {
		t.Errorf("daemon after the refused downgrade runs %q", exe)
	}

	// Remove stops the daemon and keeps the state; purge removes it.
	out = shDoc(t, dist, docScript(t, "linux-remove", ""), env)
	if !strings.Contains(out, "ward-agent: stopped the daemon (pid "+strconv.Itoa(pid3)+")") {
		t.Errorf("remove did not stop the daemon:\n%s", out)
	}
	if pids := wardDaemons(); len(pids) > 0 {
		t.Errorf("daemons %v run after the package was removed", pids)
	}
	if _, err := os.Stat("/var/lib/ward/device.json"); err != nil {
		t.Errorf("remove (not purge) lost the enrolment: %v", err)
	}
	if _, err := os.Stat("/usr/bin/ward-agent"); !os.IsNotExist(err) {
		t.Errorf("remove left the program: %v", err)
	}
	shDoc(t, dist, docScript(t, "linux-purge", ""), env)
	for _, p := range []string{"/var/lib/ward", "/var/log/ward-agent.log", "/etc/ward"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("purge left %s: %v", p, err)
		}
	}
}

// prermWithoutHandRun is the prerm of the packages built before the
// maintainer scripts knew daemons run by hand: it stops systemd's service
// only.
const prermWithoutHandRun = `#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl stop ward-agent.service || true
fi
case "$1" in
remove | 0)
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable ward-agent.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
`

// shDoc runs a script from docs/install.md with sh -e in dir.
func shDoc(t *testing.T, dir, script string, env []string) string {
	t.Helper()
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh -e -c %q: %v\n%s", script, err, out)
	}
	return string(out)
}

// shUntil runs script until it succeeds with output matching want (30 s).
func shUntil(t *testing.T, script string, env []string, want *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command("sh", "-e", "-c", script)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err == nil && want.Match(out) {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never printed %s (last: %v):\n%s", script, want, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// daemonPID waits for the daemon's pid file (10 s) and returns the pid of
// the live process it names.
func daemonPID(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, err := os.ReadFile("/var/lib/ward/daemon.pid")
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && perr == nil && running(pid) {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live daemon in /var/lib/ward/daemon.pid (%q, %v)", raw, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// procExe is the program process pid runs ("... (deleted)" once replaced).
func procExe(pid int) string {
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return exe
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// wardDaemons lists the live processes running /usr/bin/ward-agent daemon,
// the program deleted or not.
func wardDaemons() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !running(pid) {
			continue
		}
		exe := procExe(pid)
		if exe != "/usr/bin/ward-agent" && exe != "/usr/bin/ward-agent (deleted)" {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if slices.Contains(strings.Split(string(cmdline), "\x00"), "daemon") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// queueReport makes the installed agent queue a report it cannot deliver
// (the collector address in device.json is rewritten to a closed port for
// the one run, then restored) and returns the outbox entries.
func queueReport(t *testing.T) []string {
	t.Helper()
	path := "/var/lib/ward/device.json"
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(orig, &d); err != nil {
		t.Fatal(err)
	}
	d["collector"] = "127.0.0.1:1"
	changed, _ := json.Marshal(d)
	if err := os.WriteFile(path, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("/usr/bin/ward-agent", "run", "--once", "--state", "/var/lib/ward").CombinedOutput()
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	got := outboxEntries(t)
	if len(got) == 0 {
		t.Fatalf("no report queued:\n%s", out)
	}
	return got
}

func outboxEntries(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/var/lib/ward/outbox")
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".report") {
			names = append(names, e.Name())
		}
	}
	return names
}
