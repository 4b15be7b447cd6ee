package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// The uids the tests run clients as: a desktop user and someone else.
const (
	deskUID  = 65534
	otherUID = 65533
)

// TestMain lets the tests run a status client as another user: the test
// binary re-executed with WARD_NOTIFY_CLIENT=DIR reads DIR as the
// commands do and prints what it saw (clientView) as JSON.
func TestMain(m *testing.M) {
	if dir := os.Getenv("WARD_NOTIFY_CLIENT"); dir != "" {
		var v clientView
		raw, err := fetch(context.Background(), filepath.Join(dir, SocketFile))
		v.SocketBytes = len(raw)
		if err != nil {
			v.SocketErr = err.Error()
		}
		st, origin, err := Read(context.Background(), dir)
		v.Origin, v.Policy = origin, st.Policy
		if err != nil {
			v.Err = err.Error()
		}
		r, err := LastReport(dir)
		v.ReportSeq = r.GetSequence()
		if err != nil {
			v.ReportErr = err.Error()
		}
		json.NewEncoder(os.Stdout).Encode(v)
		os.Exit(0)
	}
	code := m.Run()
	if clientBinDir != "" {
		os.RemoveAll(clientBinDir)
	}
	os.Exit(code)
}

// clientView is what a client saw: the socket's answer, Read, LastReport.
type clientView struct {
	SocketBytes int    `json:"socket_bytes"`
	SocketErr   string `json:"socket_err,omitempty"`
	Origin      Origin `json:"origin"`
	Policy      string `json:"policy"`
	Err         string `json:"err,omitempty"`
	ReportSeq   uint64 `json:"report_seq"`
	ReportErr   string `json:"report_err,omitempty"`
}

var (
	clientBinOnce sync.Once
	clientBinDir  string
	clientBin     string
)

// needRoot skips tests that change owners and run processes as other
// users.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chowns files and runs clients as other uids")
	}
}

// asUser runs the status client as uid against dir. The test binary is
// copied where other users may run it (go test keeps it in a private
// directory).
func asUser(t *testing.T, uid int, dir string) clientView {
	t.Helper()
	clientBinOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			return
		}
		d, err := os.MkdirTemp("", "ward-notify-client-")
		if err != nil || os.Chmod(d, 0o755) != nil {
			return
		}
		data, err := os.ReadFile(self)
		if err != nil || os.WriteFile(filepath.Join(d, "client"), data, 0o755) != nil {
			return
		}
		clientBinDir, clientBin = d, filepath.Join(d, "client")
	})
	if clientBin == "" {
		t.Fatal("cannot copy the test binary for other users")
	}
	cmd := exec.Command(clientBin)
	cmd.Env = []string{"WARD_NOTIFY_CLIENT=" + dir, "HOME=/nonexistent", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client as uid %d: %v\n%s", uid, err, stderr.Bytes())
	}
	var v clientView
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("client as uid %d: %v\n%s", uid, err, out)
	}
	return v
}

// openDir is a temporary directory other users can enter.
func openDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// fakeSessions is a logind session tree in which each uid has one local
// desktop session (file ID = uid); login and logout add and remove them.
type fakeSessions struct {
	t   *testing.T
	dir string
}

func newSessions(t *testing.T, uids ...int) *fakeSessions {
	f := &fakeSessions{t: t, dir: filepath.Join(t.TempDir(), "run", "systemd", "sessions")}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, uid := range uids {
		f.login(uid)
	}
	return f
}

func (f *fakeSessions) login(uid int) {
	data := fmt.Sprintf("# This is private data. Do not parse.\nUID=%d\nUSER=u%d\nACTIVE=1\nIS_DISPLAY=1\nSTATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=user\nSEAT=seat0\n", uid, uid)
	if err := os.WriteFile(filepath.Join(f.dir, strconv.Itoa(uid)), []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSessions) logout(uid int) {
	if err := os.Remove(filepath.Join(f.dir, strconv.Itoa(uid))); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSessions) users() ([]User, error) { return SessionUsers(f.dir) }

// syncBuffer is a log sink for a server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testReport(seq uint64) *wardv1.Report {
	return &wardv1.Report{Sequence: seq, CollectedAt: timestamppb.New(time.Now()),
		Facts: &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux"}}}
}

var testPolicy = &policies.Policy{Name: "baseline", Version: 3}

// fileIs checks path's type, permissions and owner.
func fileIs(t *testing.T, path string, dir bool, perm fs.FileMode, uid int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	owner := int(fi.Sys().(*syscall.Stat_t).Uid)
	if fi.IsDir() != dir || fi.Mode().Perm() != perm || owner != uid {
		t.Errorf("%s: dir %v, mode %04o, owner %d; want dir %v, mode %04o, owner %d", path, fi.IsDir(), fi.Mode().Perm(), owner, dir, perm, uid)
	}
}

func absent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (err %v)", path, err)
	}
}

// TestStatusFilesPerUser: the service's status and report are root's
// alone (0600, also when an older version left them 0644); each desktop
// user gets a copy of their own in a root directory; a user's copy goes
// when their session ends, and all copies go when the sessions cannot be
// read.
func TestStatusFilesPerUser(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(openDir(t), "status")
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{StatusFile, LastReportFile} {
		os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o644) // as an older version left them
	}
	var logs syncBuffer
	srv, err := NewServer(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	fileIs(t, filepath.Join(dir, StatusFile), false, 0o600, 0)
	fileIs(t, filepath.Join(dir, LastReportFile), false, 0o600, 0)

	sessions := newSessions(t, deskUID)
	srv.Desktop = sessions.users
	srv.Publish(testPolicy, nil, testReport(5), nil, nil)

	fileIs(t, dir, true, 0o755, 0)
	fileIs(t, filepath.Join(dir, StatusFile), false, 0o600, 0)
	fileIs(t, filepath.Join(dir, LastReportFile), false, 0o600, 0)
	users := filepath.Join(dir, UsersDir)
	own := filepath.Join(users, strconv.Itoa(deskUID))
	fileIs(t, users, true, 0o755, 0)
	fileIs(t, own, true, 0o755, 0)
	fileIs(t, filepath.Join(own, StatusFile), false, 0o600, deskUID)
	fileIs(t, filepath.Join(own, LastReportFile), false, 0o600, deskUID)
	for _, name := range []string{StatusFile, LastReportFile} {
		root, _ := os.ReadFile(filepath.Join(dir, name))
		copied, _ := os.ReadFile(filepath.Join(own, name))
		if len(root) < 20 || !bytes.Equal(root, copied) {
			t.Errorf("%s: the user's copy differs from the service's:\n%s\n---\n%s", name, copied, root)
		}
	}
	absent(t, filepath.Join(users, strconv.Itoa(otherUID)))
	entries, _ := os.ReadDir(own)
	if len(entries) != 2 {
		t.Errorf("the user's directory holds %d entries, want 2 (no temporary files left)", len(entries))
	}

	// The next round rewrites the copy.
	srv.Publish(testPolicy, nil, testReport(6), nil, nil)
	if r, err := LastReport(own); err != nil || r.GetSequence() != 6 {
		t.Errorf("the copy after the next round: sequence %d, %v; want 6", r.GetSequence(), err)
	}

	// Another user logs in, the first logs out: one resync later only
	// the new user has a copy.
	sessions.login(otherUID)
	sessions.logout(deskUID)
	srv.syncUsers()
	absent(t, own)
	fileIs(t, filepath.Join(users, strconv.Itoa(otherUID), StatusFile), false, 0o600, otherUID)

	// Sessions that cannot be read make nobody a desktop user.
	srv.Desktop = func() ([]User, error) { return nil, errors.New("sessions unreadable") }
	srv.syncUsers()
	srv.syncUsers()
	absent(t, filepath.Join(users, strconv.Itoa(otherUID)))
	if n := strings.Count(logs.String(), "sessions unreadable"); n != 1 {
		t.Errorf("the sync failure was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestSocketAnswersOnlyRootAndDesktopUsers connects to the real socket as
// root, as a desktop user and as another user (child processes with those
// uids): the kernel's peer credentials decide; the other user gets the
// connection closed unanswered, cannot read the saved files either and is
// told why, and the refusal is logged once a minute at most.
func TestSocketAnswersOnlyRootAndDesktopUsers(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(openDir(t), "status")
	var logs syncBuffer
	srv, err := NewServer(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sessions := newSessions(t, deskUID)
	srv.Desktop = sessions.users
	srv.Resync = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	srv.Publish(testPolicy, nil, testReport(9), nil, nil)
	waitFor(t, "the socket", func() bool {
		_, origin, err := Read(context.Background(), dir)
		return err == nil && origin == FromService
	})

	denied := ErrNotDesktopUser.Error()
	if v := asUser(t, deskUID, dir); v.SocketBytes == 0 || v.Origin != FromService || v.Policy != "baseline" || v.Err != "" || v.ReportSeq != 9 || v.ReportErr != "" {
		t.Errorf("desktop user: %+v; want the service's status and report 9", v)
	}
	if v := asUser(t, otherUID, dir); v.SocketBytes != 0 || v.Origin != "" || v.Err != denied || v.ReportErr != denied || v.ReportSeq != 0 {
		t.Errorf("another user: %+v; want nothing from the socket and %q", v, denied)
	}
	asUser(t, otherUID, dir) // two more refused connections, within the minute
	waitFor(t, "the refusal in the log", func() bool { return strings.Contains(logs.String(), "status request refused") })
	if n := strings.Count(logs.String(), "status request refused"); n != 1 || !strings.Contains(logs.String(), "uid=65533") {
		t.Errorf("refusals logged %d times, want once with uid=65533:\n%s", n, logs.String())
	}

	// The desktop user logs out: the socket refuses them and their copy
	// is gone.
	sessions.logout(deskUID)
	waitFor(t, "the copy's removal", func() bool {
		_, err := os.Stat(filepath.Join(dir, UsersDir, strconv.Itoa(deskUID)))
		return errors.Is(err, fs.ErrNotExist)
	})
	if v := asUser(t, deskUID, dir); v.SocketBytes != 0 || v.Err != denied || v.ReportErr != denied {
		t.Errorf("logged-out user: %+v; want %q", v, denied)
	}

	// Back at the computer, with the service stopped: the user reads
	// their saved copy, the other user still nothing.
	sessions.login(deskUID)
	waitFor(t, "the copy", func() bool {
		_, err := os.Stat(filepath.Join(dir, UsersDir, strconv.Itoa(deskUID), StatusFile))
		return err == nil
	})
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if v := asUser(t, deskUID, dir); v.Origin != FromFile || v.Policy != "baseline" || v.ReportSeq != 9 || v.Err != "" {
		t.Errorf("desktop user, service stopped: %+v; want the saved copy", v)
	}
	if v := asUser(t, otherUID, dir); v.Err != denied || v.ReportErr != denied {
		t.Errorf("another user, service stopped: %+v; want %q", v, denied)
	}
	if _, origin, err := Read(context.Background(), dir); err != nil || origin != FromFile {
		t.Errorf("root, service stopped: %s, %v; want the saved file", origin, err)
	}
}

// The session directory also holds each session's FIFO; listing users
// never opens it (which would block).
func TestSessionUsersSkipsFIFOs(t *testing.T) {
	f := newSessions(t, 1000)
	if err := syscall.Mkfifo(filepath.Join(f.dir, "1000.ref"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan []User, 1)
	go func() { u, _ := f.users(); done <- u }()
	select {
	case u := <-done:
		if len(u) != 1 || u[0].UID != 1000 {
			t.Errorf("users = %+v, want uid 1000", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SessionUsers blocked on the FIFO")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
