package main

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The collector's packages are built once per test binary, version 1.0.0,
// apart from the agent's (which need wixl for the MSI).
var (
	collectorOnce sync.Once
	collectorDir  string
	collectorErr  error
)

func collectorPackages(t *testing.T) string {
	t.Helper()
	collectorOnce.Do(func() {
		collectorDir, collectorErr = os.MkdirTemp("", "ward-collector-dist-")
		if collectorErr == nil {
			_, collectorErr = Build(context.Background(), Options{Version: "1.0.0", Out: collectorDir, Arch: "amd64",
				Formats: []string{"collector-deb", "collector-rpm"}})
		}
	})
	if collectorErr != nil {
		t.Fatalf("build: %v", collectorErr)
	}
	return collectorDir
}

// collectorUnit is the service unit as packaged in the .deb.
func collectorUnit(t *testing.T) string {
	t.Helper()
	need(t, "dpkg-deb")
	dir := t.TempDir()
	cmdOut(t, "dpkg-deb", "-x", filepath.Join(collectorPackages(t), "ward-collector_1.0.0_amd64.deb"), dir)
	raw, err := os.ReadFile(filepath.Join(dir, "lib/systemd/system/ward-collector.service"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestCollectorDebContents(t *testing.T) {
	need(t, "dpkg-deb")
	deb := filepath.Join(collectorPackages(t), "ward-collector_1.0.0_amd64.deb")
	list := cmdOut(t, "dpkg-deb", "-c", deb)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^-rwxr-xr-x root/root .* \./usr/bin/ward-collector$`),
		regexp.MustCompile(`(?m)^-rw-r--r-- root/root .* \./lib/systemd/system/ward-collector\.service$`),
		regexp.MustCompile(`(?m)^-rw------- root/root .* \./etc/ward-collector/ward-collector\.env$`),
	} {
		if !want.MatchString(list) {
			t.Errorf("dpkg-deb -c: no line matching %s in\n%s", want, list)
		}
	}
	// The data directory is the postinst's, never a package file: dpkg
	// would otherwise own it, and its owner, mode and contents.
	if strings.Contains(list, "/var/lib/ward-collector") {
		t.Errorf("the package ships /var/lib/ward-collector:\n%s", list)
	}
	info := cmdOut(t, "dpkg-deb", "-I", deb)
	for _, want := range []string{"Package: ward-collector", "Version: 1.0.0", "Architecture: amd64", "preinst", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	if got := cmdOut(t, "dpkg-deb", "-f", deb, "Package"); got != "ward-collector\n" {
		t.Errorf("Package = %q", got)
	}
	ctrl := t.TempDir()
	cmdOut(t, "dpkg-deb", "-e", deb, ctrl)
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/ward-collector/ward-collector.env" {
		t.Errorf("conffiles = %q, %v; want the env file only", conffiles, err)
	}
	preinst, _ := os.ReadFile(filepath.Join(ctrl, "preinst"))
	if !strings.Contains(string(preinst), `new="1.0.0"`) {
		t.Errorf("preinst does not carry the version:\n%s", preinst)
	}
}

func TestCollectorUnit(t *testing.T) {
	unit := collectorUnit(t)
	for _, want := range []string{
		"\nUser=ward-collector\n", "\nGroup=ward-collector\n",
		"\nExecStart=/usr/bin/ward-collector serve --data /var/lib/ward-collector $WARD_COLLECTOR_OPTS\n",
		"\nEnvironmentFile=/etc/ward-collector/ward-collector.env\n",
		"\nStateDirectory=ward-collector\n", "\nStateDirectoryMode=0700\n",
		"\nRestart=on-failure\n", "\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n",
		"\nPrivateTmp=yes\n", "\nCapabilityBoundingSet=\n", "\nAmbientCapabilities=\n",
		"\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	// No ReadWritePaths: under ProtectSystem=strict the state directory is
	// the only writable place.
	if strings.Contains(unit, "ReadWritePaths") {
		t.Error("unit opens more than its state directory for writing")
	}
}

// TestCollectorUnitVerifies has systemd check the unit (it needs no
// running systemd for that): no unknown directive or bad value, and an
// exposure score of 2.0 or less on systemd-analyze security's 0–10 scale
// (a unit with no hardening scores 9.6).
func TestCollectorUnitVerifies(t *testing.T) {
	need(t, "systemd-analyze", "dpkg-deb")
	dir := t.TempDir()
	cmdOut(t, "dpkg-deb", "-x", filepath.Join(collectorPackages(t), "ward-collector_1.0.0_amd64.deb"), dir)
	// verify wants the program to exist: point ExecStart at the extracted one.
	unit := strings.Replace(collectorUnit(t), "ExecStart=/usr/bin/ward-collector", "ExecStart="+filepath.Join(dir, "usr/bin/ward-collector"), 1)
	path := filepath.Join(t.TempDir(), "ward-collector.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ := exec.Command("systemd-analyze", "security", "--offline=true", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for ward-collector\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 2.0 {
		t.Errorf("exposure level %s > 2.0:\n%s", m[1], out)
	}
	// The yardstick: the same unit without its hardening.
	var bare []string
	for _, l := range strings.Split(unit, "\n") {
		if strings.HasPrefix(l, "Protect") || strings.HasPrefix(l, "Private") || strings.HasPrefix(l, "Restrict") ||
			strings.HasPrefix(l, "SystemCall") || strings.HasPrefix(l, "Capability") || strings.HasPrefix(l, "NoNew") ||
			strings.HasPrefix(l, "Lock") || strings.HasPrefix(l, "MemoryDeny") || strings.HasPrefix(l, "User=") ||
			strings.HasPrefix(l, "Group=") || strings.HasPrefix(l, "UMask") || strings.HasPrefix(l, "RemoveIPC") {
			continue
		}
		bare = append(bare, l)
	}
	if err := os.WriteFile(path, []byte(strings.Join(bare, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("systemd-analyze", "security", "--offline=true", path).CombinedOutput()
	if m2 := regexp.MustCompile(`Overall exposure level for ward-collector\.service: (\d+\.\d+)`).FindSubmatch(out); m2 != nil {
		t.Logf("exposure: %s hardened, %s without the hardening directives", m[1], m2[1])
	}
}

func TestCollectorRPMContents(t *testing.T) {
	need(t, "rpm")
	rpm := filepath.Join(collectorPackages(t), "ward-collector-1.0.0-1.x86_64.rpm")
	dump := cmdOut(t, "rpm", "-qp", "--dump", rpm)
	// path size mtime digest mode owner group isconfig isdoc rdev symlink
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^/usr/bin/ward-collector \d+ \d+ [0-9a-f]+ 0100755 root root 0 0 `),
		regexp.MustCompile(`(?m)^/usr/lib/systemd/system/ward-collector\.service \d+ \d+ [0-9a-f]+ 0100644 root root 0 0 `),
		regexp.MustCompile(`(?m)^/etc/ward-collector/ward-collector\.env \d+ \d+ [0-9a-f]+ 0100600 root root 1 0 `),
	} {
		if !want.MatchString(dump) {
			t.Errorf("rpm --dump: no line matching %s in\n%s", want, dump)
		}
	}
	if strings.Contains(dump, "/var/lib/ward-collector") {
		t.Errorf("the rpm ships /var/lib/ward-collector:\n%s", dump)
	}
	if cfg := cmdOut(t, "rpm", "-qp", "--configfiles", rpm); cfg != "/etc/ward-collector/ward-collector.env\n" {
		t.Errorf("rpm --configfiles = %q", cfg)
	}
	scripts := cmdOut(t, "rpm", "-qp", "--scripts", rpm)
	for _, want := range []string{"preinstall scriptlet", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet",
		"useradd --system", "systemctl restart ward-collector.service", "systemctl stop ward-collector.service"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm --scripts lacks %q", want)
		}
	}
	// %config(noreplace): an edited env file is kept on upgrade.
	if out := cmdOut(t, "rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", rpm); !strings.Contains(out, "/etc/ward-collector/ward-collector.env cn") {
		t.Errorf("env file flags:\n%s", out)
	}
}

// TestCollectorDebInstallUpgradeRemovePurge installs the real .deb on this
// machine, whose PID 1 is not systemd: the user and the data directory,
// the collector run by hand as the postinst says, an upgrade that keeps
// the fleet and an edited env file and gives back to ward-collector a
// file root left in the data directory, a refused downgrade, remove (data
// kept) and purge (data with a CA kept, unless WARD_COLLECTOR_PURGE_DATA=1;
// data without a CA removed). It changes the machine, so it runs only as
// root with WARD_INSTALL_TESTS=1 or CI=true.
func TestCollectorDebInstallUpgradeRemovePurge(t *testing.T) {
	if os.Getenv("WARD_INSTALL_TESTS") != "1" && !ci() {
		t.Skip("changes this machine (dpkg, a system user, /etc/ward-collector, /var/lib/ward-collector): set WARD_INSTALL_TESTS=1")
	}
	if os.Geteuid() != 0 {
		if ci() {
			t.Fatal("the install test needs root under CI=true")
		}
		t.Skip("needs root")
	}
	need(t, "dpkg", "dpkg-deb", "runuser")
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if ci() {
			t.Fatal("systemd runs on this machine: this test is about machines without it")
		}
		t.Skip("systemd runs on this machine: this test is about machines without it")
	}
	if exec.Command("dpkg", "-s", "ward-collector").Run() == nil {
		t.Fatal("ward-collector is already installed on this machine; not touching it")
	}
	for _, p := range []string{"/var/lib/ward-collector", "/etc/ward-collector", "/var/backups/ward-collector"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists; not touching it", p)
		}
	}
	if aside, _ := filepath.Glob("/var/lib/ward-collector.replaced-*"); len(aside) > 0 {
		t.Fatalf("%v exist; not touching them", aside)
	}
	_, userErr := user.Lookup("ward-collector")
	hadUser := userErr == nil
	dist := collectorPackages(t)
	for _, v := range []string{"1.1.0"} {
		if _, err := Build(context.Background(), Options{Version: v, Out: dist, Arch: "amd64", Formats: []string{"collector-deb"}}); err != nil {
			t.Fatal(err)
		}
	}
	deb := func(v string) string { return filepath.Join(dist, "ward-collector_"+v+"_amd64.deb") }
	var serve *exec.Cmd
	t.Cleanup(func() {
		if serve != nil {
			serve.Process.Kill()
			serve.Wait()
		}
		cmd := exec.Command("dpkg", "--purge", "ward-collector")
		cmd.Env = append(os.Environ(), "WARD_COLLECTOR_PURGE_DATA=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
		os.RemoveAll("/var/lib/ward-collector")
		os.RemoveAll("/etc/ward-collector")
		os.RemoveAll("/var/backups/ward-collector")
		aside, _ := filepath.Glob("/var/lib/ward-collector.replaced-*")
		for _, p := range aside {
			os.RemoveAll(p)
		}
		if !hadUser {
			exec.Command("userdel", "ward-collector").Run()
			exec.Command("groupdel", "ward-collector").Run()
		}
	})

	// A first install and purge before the collector ever ran: the data
	// directory holds no CA, so purge removes it.
	cmdOut(t, "dpkg", "-i", deb("1.0.0"))
	if _, err := os.Stat("/var/lib/ward-collector"); err != nil {
		t.Fatalf("install made no data directory: %v", err)
	}
	if out := cmdOut(t, "dpkg", "--purge", "ward-collector"); !strings.Contains(out, "ward-collector: removed /var/lib/ward-collector") {
		t.Errorf("purge without a CA:\n%s", out)
	}
	for _, p := range []string{"/var/lib/ward-collector", "/etc/ward-collector"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("purge left %s: %v", p, err)
		}
	}

	out := cmdOut(t, "dpkg", "-i", deb("1.0.0"))
	if !strings.Contains(out, "ward-collector: systemd is not running on this machine, so no service was started.") ||
		!strings.Contains(out, "run, as user ward-collector with your init system: /usr/bin/ward-collector serve --data /var/lib/ward-collector $WARD_COLLECTOR_OPTS (from /etc/ward-collector/ward-collector.env)") {
		t.Errorf("install without systemd did not say how to run the collector:\n%s", out)
	}
	u, err := user.Lookup("ward-collector")
	if err != nil {
		t.Fatalf("no ward-collector user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if uid == 0 || uid >= 1000 || u.HomeDir != "/var/lib/ward-collector" {
		t.Errorf("ward-collector user: uid %d (want a system uid), home %s", uid, u.HomeDir)
	}
	if passwd, _ := os.ReadFile("/etc/passwd"); !regexp.MustCompile(`(?m)^ward-collector:x:\d+:\d+:[^:]*:/var/lib/ward-collector:/usr/sbin/nologin$`).Match(passwd) {
		t.Errorf("ward-collector has a login shell:\n%s", passwd)
	}
	checkOwner := func(path string, mode os.FileMode, wantUID int) {
		t.Helper()
		st, err := os.Lstat(path)
		if err != nil {
			t.Error(err)
			return
		}
		sys := st.Sys().(*syscall.Stat_t)
		if (mode != anyMode && st.Mode()&(os.ModePerm|os.ModeDir) != mode) || int(sys.Uid) != wantUID {
			t.Errorf("%s: mode %v uid %d, want %v uid %d", path, st.Mode(), sys.Uid, mode, wantUID)
		}
	}
	checkOwner("/var/lib/ward-collector", 0o700|os.ModeDir, uid)
	checkOwner("/etc/ward-collector/ward-collector.env", 0o600, 0)
	checkOwner("/usr/bin/ward-collector", 0o755, 0)
	if v := strings.TrimSpace(cmdOut(t, "/usr/bin/ward-collector", "version")); v != "1.0.0" {
		t.Errorf("version = %q", v)
	}

	// Run it by hand as the postinst says, with the env file's options
	// (ports moved to free ones for the test).
	opts := regexp.MustCompile(`(?m)^WARD_COLLECTOR_OPTS=(.*)$`).FindStringSubmatch(readFile(t, "/etc/ward-collector/ward-collector.env"))
	if opts == nil {
		t.Fatal("env file sets no WARD_COLLECTOR_OPTS")
	}
	if opts[1] != "--grpc-addr :8443 --http-addr 127.0.0.1:8080" {
		t.Errorf("WARD_COLLECTOR_OPTS = %q", opts[1])
	}
	start := func() (fingerprint string) {
		t.Helper()
		serve = exec.Command("runuser", "-u", "ward-collector", "--", "/usr/bin/ward-collector", "serve", "--data", "/var/lib/ward-collector",
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
		fingerprint, _ = scanServe(t, serve)
		return fingerprint
	}
	stop := func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
		serve = nil
	}
	fp := start()
	checkOwner("/var/lib/ward-collector/pki/ca.key", 0o600, uid)
	// The database's mode is the umask's (the unit's is 0077); the 0700
	// directory guards it.
	checkOwner("/var/lib/ward-collector/ward.db", anyMode, uid)
	// An admin command run as root (as people do) leaves root's files in
	// the data directory.
	asRoot := exec.Command("/usr/bin/ward-collector", "token", "create", "--data", "/var/lib/ward-collector", "--group", "laptops", "--json")
	if out, err := asRoot.CombinedOutput(); err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	if err := os.WriteFile("/var/lib/ward-collector/left-by-root", nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// Upgrade with the collector running and an edited env file.
	edited := strings.Replace(readFile(t, "/etc/ward-collector/ward-collector.env"), "--http-addr 127.0.0.1:8080", "--http-addr 127.0.0.1:8081 --hostname ward.example.org", 1)
	if err := os.WriteFile("/etc/ward-collector/ward-collector.env", []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dpkg", "-i", "--force-confold", deb("1.1.0"))
	raw, err := cmd.CombinedOutput()
	out = string(raw)
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`ward-collector: a collector \(pid \d+\) still runs the replaced program; restart it to run this version`).MatchString(out) {
		t.Errorf("upgrade did not name the collector still running the old program:\n%s", out)
	}
	if v := strings.TrimSpace(cmdOut(t, "/usr/bin/ward-collector", "version")); v != "1.1.0" {
		t.Errorf("after upgrade, version = %q", v)
	}
	if got := readFile(t, "/etc/ward-collector/ward-collector.env"); got != edited {
		t.Errorf("upgrade replaced the edited env file:\n%s", got)
	}
	checkOwner("/var/lib/ward-collector/left-by-root", 0o600, uid)
	for _, p := range []string{"ward.db", "ward.db-wal", "ward.db-shm"} {
		if _, err := os.Stat("/var/lib/ward-collector/" + p); err == nil {
			checkOwner("/var/lib/ward-collector/"+p, anyMode, uid)
		}
	}
	stop()
	if got := start(); got != fp {
		t.Errorf("CA fingerprint after the upgrade = %s, want %s", got, fp)
	}
	tokens := cmdOut(t, "runuser", "-u", "ward-collector", "--", "/usr/bin/ward-collector", "token", "list", "--data", "/var/lib/ward-collector", "--json")
	if !strings.Contains(tokens, `"laptops"`) {
		t.Errorf("the token made before the upgrade is gone:\n%s", tokens)
	}

	// docs/operations.md's backup, as root, while the collector serves as
	// ward-collector; then its restore, collector stopped, over the
	// package's data directory: the files stay the service user's and the
	// collector starts on them with the same CA and token.
	out = shDoc(t, "/", opsScript(t, "collector-backup"), nil)
	backups, _ := filepath.Glob("/var/backups/ward-collector/2*")
	if len(backups) != 1 || !strings.Contains(out, "backup in "+backups[0]+" (sqlite store, CA fingerprint "+fp+")") {
		t.Fatalf("backup made %v:\n%s", backups, out)
	}
	for _, p := range []string{"ward.db-wal", "ward.db-shm"} {
		if _, err := os.Stat("/var/lib/ward-collector/" + p); err == nil {
			checkOwner("/var/lib/ward-collector/"+p, anyMode, uid)
		}
	}
	stop()
	restore := strings.ReplaceAll(opsScript(t, "collector-restore"), "/var/backups/ward-collector/20261201T021500Z", backups[0])
	out = shDoc(t, "/", restore, nil)
	if !strings.Contains(out, "moved the previous /var/lib/ward-collector to /var/lib/ward-collector.replaced-") || !strings.Contains(out, "integrity check ok") {
		t.Errorf("restore:\n%s", out)
	}
	checkOwner("/var/lib/ward-collector", 0o700|os.ModeDir, uid)
	checkOwner("/var/lib/ward-collector/ward.db", 0o600, uid)
	checkOwner("/var/lib/ward-collector/pki/ca.key", 0o600, uid)
	if got := start(); got != fp {
		t.Errorf("CA fingerprint after the restore = %s, want %s", got, fp)
	}
	tokens = cmdOut(t, "runuser", "-u", "ward-collector", "--", "/usr/bin/ward-collector", "token", "list", "--data", "/var/lib/ward-collector", "--json")
	if !strings.Contains(tokens, `"laptops"`) {
		t.Errorf("the token is gone after the restore:\n%s", tokens)
	}
	stop()

	// Downgrade is refused and leaves 1.1.0.
	if out, err := exec.Command("dpkg", "-i", deb("1.0.0")).CombinedOutput(); err == nil || !strings.Contains(string(out), "ward-collector: refusing to downgrade from 1.1.0 to 1.0.0") {
		t.Errorf("downgrade: err %v\n%s", err, out)
	}
	if v := strings.TrimSpace(cmdOut(t, "/usr/bin/ward-collector", "version")); v != "1.1.0" {
		t.Errorf("after the refused downgrade, version = %q", v)
	}

	// Remove keeps the data and the configuration; purge keeps data with
	// a CA and says so.
	cmdOut(t, "dpkg", "--remove", "ward-collector")
	if _, err := os.Stat("/usr/bin/ward-collector"); !os.IsNotExist(err) {
		t.Errorf("remove left the program: %v", err)
	}
	for _, p := range []string{"/var/lib/ward-collector/pki/ca.key", "/var/lib/ward-collector/ward.db", "/etc/ward-collector/ward-collector.env"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("remove lost %s: %v", p, err)
		}
	}
	out = cmdOut(t, "dpkg", "--purge", "ward-collector")
	if !strings.Contains(out, "ward-collector: kept /var/lib/ward-collector: it holds the collector CA every enrolled agent trusts, and the fleet.") {
		t.Errorf("purge with a CA did not say it kept the data:\n%s", out)
	}
	if _, err := os.Stat("/var/lib/ward-collector/pki/ca.key"); err != nil {
		t.Errorf("purge deleted the CA: %v", err)
	}
	if _, err := os.Stat("/etc/ward-collector"); !os.IsNotExist(err) {
		t.Errorf("purge left /etc/ward-collector: %v", err)
	}

	// Reinstalled over the kept data, the same fleet; purged with
	// WARD_COLLECTOR_PURGE_DATA=1, the data goes.
	cmdOut(t, "dpkg", "-i", deb("1.1.0"))
	if got := start(); got != fp {
		t.Errorf("CA fingerprint after reinstall = %s, want %s", got, fp)
	}
	stop()
	cmd = exec.Command("dpkg", "--purge", "ward-collector")
	cmd.Env = append(os.Environ(), "WARD_COLLECTOR_PURGE_DATA=1")
	if raw, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(raw), "ward-collector: removed /var/lib/ward-collector") {
		t.Errorf("purge with WARD_COLLECTOR_PURGE_DATA=1: %v\n%s", err, raw)
	}
	if _, err := os.Stat("/var/lib/ward-collector"); !os.IsNotExist(err) {
		t.Errorf("purge with WARD_COLLECTOR_PURGE_DATA=1 left the data: %v", err)
	}
}

// anyMode makes checkOwner check the owner only.
const anyMode os.FileMode = 1 << 31

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// scanServe starts cmd (a ward-collector serve) and waits for its CA
// fingerprint and gRPC address.
func scanServe(t *testing.T, cmd *exec.Cmd) (fingerprint, addr string) {
	t.Helper()
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
	fpRe := regexp.MustCompile(`^CA fingerprint: (sha256:[0-9a-f]+)$`)
	addrRe := regexp.MustCompile(`^gRPC on (\S+), HTTP on`)
	sc := bufio.NewScanner(pr)
	var log strings.Builder
	for (fingerprint == "" || addr == "") && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := fpRe.FindStringSubmatch(sc.Text()); m != nil {
			fingerprint = m[1]
		}
		if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	if fingerprint == "" || addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("collector did not start:\n%s", log.String())
	}
	go func() { io.Copy(io.Discard, pr); pr.Close() }()
	return fingerprint, addr
}

// TestContainerfile checks what can be checked without a container
// engine: every file the build stage copies from the context exists, the
// image runs as a non-root user with the data directory its CMD serves
// from as a volume, and the build stage's go build command, run here on a
// tree holding only what the stage copies, makes a static binary (no interpreter, no shared libraries: the final
// stage is empty) that runs and reports the version it was given.
func TestContainerfile(t *testing.T) {
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw := readFile(t, filepath.Join(repo, "installer", "collector", "Containerfile"))
	// Join continued lines.
	text := strings.ReplaceAll(raw, "\\\n", " ")
	var stages []string
	var copies [][]string
	var build, user, volume, cmdLine string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "FROM":
			stages = append(stages, strings.Join(f[1:], " "))
		case "COPY":
			if !strings.HasPrefix(f[1], "--from=") {
				copies = append(copies, f[1:])
			}
		case "RUN":
			if strings.Contains(line, "go build") {
				build = strings.Join(f[1:], " ")
			}
		case "USER":
			user = f[1]
		case "VOLUME":
			volume = strings.Join(f[1:], " ")
		case "CMD":
			cmdLine = strings.Join(f[1:], " ")
		}
	}
	if len(stages) != 2 || !strings.HasSuffix(stages[0], " AS build") || stages[1] != "scratch" {
		t.Errorf("stages = %q, want a build stage and scratch", stages)
	}
	// The build stage sees only what it copies: make that tree.
	ctx := t.TempDir()
	for _, c := range copies {
		dest := c[len(c)-1]
		for _, src := range c[:len(c)-1] {
			from := filepath.Join(repo, src)
			st, err := os.Stat(from)
			if err != nil {
				t.Errorf("COPY %s: %v", src, err)
				continue
			}
			to := filepath.Join(ctx, dest)
			if !st.IsDir() && strings.HasSuffix(dest, "/") {
				to = filepath.Join(to, filepath.Base(src))
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				t.Fatal(err)
			}
			if st.IsDir() {
				if err := os.MkdirAll(to, 0o755); err != nil {
					t.Fatal(err)
				}
				cmdOut(t, "cp", "-a", strings.TrimSuffix(from, "/")+"/.", to+"/")
			} else {
				cmdOut(t, "cp", "-a", from, to)
			}
		}
	}
	if len(copies) == 0 {
		t.Error("no COPY from the build context")
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER = %q, want a non-root user", user)
	}
	var vol []string
	if err := json.Unmarshal([]byte(volume), &vol); err != nil || len(vol) != 1 {
		t.Fatalf("VOLUME %q: %v", volume, err)
	}
	var serve []string
	if err := json.Unmarshal([]byte(cmdLine), &serve); err != nil {
		t.Fatalf("CMD %q: %v", cmdLine, err)
	}
	if strings.Join(serve, " ") != "serve --data "+vol[0]+" --grpc-addr :8443 --http-addr :8080" {
		t.Errorf("CMD %q does not serve from the volume %s", serve, vol[0])
	}
	// The go build line, with ${VERSION} and the output path set here.
	m := regexp.MustCompile(`^CGO_ENABLED=0 go build (.*) -o (\S+) (\./\S+)$`).FindStringSubmatch(build)
	if m == nil {
		t.Fatalf("build stage's go build line %q: want CGO_ENABLED=0 go build ... -o OUT ./PKG", build)
	}
	bin := filepath.Join(t.TempDir(), "ward-collector")
	args := []string{"build"}
	for _, a := range splitQuoted(m[1]) {
		args = append(args, strings.ReplaceAll(a, "${VERSION}", "9.8.7-test"))
	}
	args = append(args, "-o", bin, m[3])
	gb := exec.Command("go", args...)
	gb.Dir = ctx
	gb.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v segment: not static", p.Type)
		}
	}
	if v := strings.TrimSpace(cmdOut(t, bin, "version")); v != "9.8.7-test" {
		t.Errorf("version = %q, want the build arg", v)
	}
	// And it serves from a data directory the way the CMD says.
	data := filepath.Join(t.TempDir(), "data")
	srv := exec.Command(bin, "serve", "--data", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	if fp, _ := scanServe(t, srv); !strings.HasPrefix(fp, "sha256:") {
		t.Errorf("fingerprint %q", fp)
	}
	srv.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		srv.Process.Kill()
		t.Error("serve did not stop on SIGTERM")
	}
}

// splitQuoted splits s into words at spaces outside double quotes, and
// drops the quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}
