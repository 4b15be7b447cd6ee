package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Entries of the status directory.
const (
	SocketFile     = "status.sock"
	StatusFile     = "status.json"
	LastReportFile = "last-report.json"
	// UsersDir holds a directory per desktop user, named by uid, with
	// that user's copies of StatusFile and LastReportFile.
	UsersDir = "users"
)

// maxDocument bounds what a client reads.
const maxDocument = 8 << 20

// DefaultResync is how often Serve brings the desktop users' copies in
// line with who is logged in at the computer.
const DefaultResync = 10 * time.Second

// refusalLogEvery bounds how often a refused status request is logged.
const refusalLogEvery = time.Minute

// ErrUnsupported is returned where this OS has no status endpoint yet
// (Windows: no named pipe; clients read status.json instead).
var ErrUnsupported = errors.New("the local status endpoint is not supported on this OS")

// ErrNoStatus means neither the service nor its saved file had a status.
var ErrNoStatus = errors.New("no status published yet")

// Server publishes the latest Status on the local endpoint and in the
// status directory.
type Server struct {
	dir string
	log *slog.Logger
	// StateDir, when set, is the agent's state directory: each Status
	// names the enrolment recorded there.
	StateDir string
	// Desktop lists the desktop users: who, besides root, may read the
	// status. NewServer sets DesktopUsers; tests read a fake session
	// tree with SessionUsers.
	Desktop func() ([]User, error)
	// Resync is how often Serve updates the desktop users' copies
	// (DefaultResync when 0).
	Resync time.Duration
	// NoCopies makes Publish write the service's files only: a round's
	// child process leaves the desktop users' copies to the daemon, which
	// takes the files up with Load.
	NoCopies bool

	mu  sync.Mutex
	doc []byte // the Status
	rep []byte // the last report
	gen uint64 // counts Publish calls

	syncMu  sync.Mutex
	copies  map[int]uint64 // uid → gen of the copy written
	syncErr string         // the last sync failure logged

	refusedMu  sync.Mutex
	refusedLog time.Time // when a refusal was last logged
	suppressed int       // refusals since, not logged
}

// NewServer prepares dir (created mode 0755 if missing) for publishing.
// Status files an older version left readable by everyone are made
// private to the service at once.
func NewServer(dir string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("status directory: %w", err)
	}
	// The service runs with umask 077; local users must still reach the
	// socket and their own copies, so the mode is set, not left to the
	// umask.
	if runtime.GOOS != "windows" {
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("status directory: %w", err)
		}
		for _, name := range []string{StatusFile, LastReportFile} {
			if err := os.Chmod(filepath.Join(dir, name), 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("status directory: %w", err)
			}
		}
	}
	return &Server{dir: dir, log: log, Desktop: DesktopUsers, copies: map[int]uint64{}}, nil
}

// Publish implements the service's status hook: it makes one round's
// results, with the device's waivers, the published Status and keeps the
// report as sent (sent; r itself when nil) for ward-agent privacy, both
// readable only by the service (mode 0600), and gives each desktop user a
// copy. Failures to write the files are logged: the socket still serves.
func (s *Server) Publish(pol *policies.Policy, results []policies.Result, r, sent *wardv1.Report, waivers []Waiver) {
	if sent == nil {
		sent = r
	}
	st := NewStatus(pol, r.GetFacts().GetOs().GetPlatform(), results, r.GetCollectedAt().AsTime())
	st.ApplyWaivers(waivers)
	if s.StateDir != "" {
		e, err := ReadEnrolment(s.StateDir)
		if err != nil {
			s.log.Warn("status names no enrolment", "err", err)
		}
		st.DeviceID, st.Epoch = e.DeviceID, e.Epoch
	}
	doc, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		s.log.Warn("cannot encode status", "err", err)
		return
	}
	rep, rerr := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(sent)
	s.mu.Lock()
	s.doc = doc
	if rerr == nil {
		s.rep = rep
	}
	s.gen++
	s.mu.Unlock()
	if err := outbox.WriteFile(filepath.Join(s.dir, StatusFile), doc, 0o600); err != nil {
		s.log.Warn("cannot save status", "err", err)
	}
	if rerr == nil {
		rerr = outbox.WriteFile(filepath.Join(s.dir, LastReportFile), rep, 0o600)
	}
	if rerr != nil {
		s.log.Warn("cannot save last report", "err", rerr)
	}
	if !s.NoCopies {
		s.syncUsers()
	}
}

// Load publishes the status and report that another process (a round's
// child) saved in the status directory, as if they had been given to
// Publish. It fails, changing nothing, when there is no status file.
func (s *Server) Load() error {
	doc, err := os.ReadFile(filepath.Join(s.dir, StatusFile))
	if err != nil {
		return fmt.Errorf("load status: %w", err)
	}
	rep, err := os.ReadFile(filepath.Join(s.dir, LastReportFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("load status: %w", err)
	}
	s.mu.Lock()
	s.doc = doc
	if rep != nil {
		s.rep = rep
	}
	s.gen++
	s.mu.Unlock()
	s.syncUsers()
	return nil
}

// Serve answers every connection on the status socket from root, the
// service's own user or a desktop user with the latest Status and closes
// it; it never reads from a client. Others' connections are closed
// unanswered (and logged, at most once a minute). Every Resync it brings
// the desktop users' copies in line with who is logged in. It returns nil
// when ctx is cancelled, after removing the socket, and ErrUnsupported at
// once on an OS without an endpoint.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.resync(ctx)
	ln, err := listen(filepath.Join(s.dir, SocketFile))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("status endpoint: %w", err)
		}
		go s.answer(c)
	}
}

func (s *Server) answer(c net.Conn) {
	defer c.Close()
	ok, uid, err := s.mayRead(c)
	if !ok {
		s.refused(uid, err)
		return
	}
	s.mu.Lock()
	doc := s.doc
	s.mu.Unlock()
	if doc == nil {
		return // nothing yet: the client falls back to the saved file
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(doc); err != nil {
		s.log.Debug("status client went away", "err", err)
	}
}

// refused logs a refused status request, at most once per
// refusalLogEvery, with how many went unlogged since the last line.
func (s *Server) refused(uid int, why error) {
	s.refusedMu.Lock()
	now := time.Now()
	if !s.refusedLog.IsZero() && now.Sub(s.refusedLog) < refusalLogEvery {
		s.suppressed++
		s.refusedMu.Unlock()
		return
	}
	n := s.suppressed
	s.refusedLog, s.suppressed = now, 0
	s.refusedMu.Unlock()
	log := s.log.With("uid", uid, "refused_unlogged", n)
	if why != nil {
		log = log.With("err", why)
	}
	log.Warn("status request refused: only root and the users logged in at this computer may read the status")
}

// resync runs syncUsers now and every Resync until ctx ends.
func (s *Server) resync(ctx context.Context) {
	every := s.Resync
	if every <= 0 {
		every = DefaultResync
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.syncUsers()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// syncUsers gives each desktop user a copy of the latest Status and report
// in UsersDir/UID (directories root's, mode 0755; files the user's, mode
// 0600) and removes the copies of users no longer logged in at the
// computer. When the desktop users cannot be listed it keeps no copy:
// unknown is nobody. It does nothing where the service keeps no per-user
// copies (Windows; a service not running as root).
func (s *Server) syncUsers() {
	if !perUserCopies() {
		return
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	var errs []error
	users, err := s.Desktop()
	if err != nil {
		errs = append(errs, err)
		users = nil
	}
	s.mu.Lock()
	doc, rep, gen := s.doc, s.rep, s.gen
	s.mu.Unlock()
	keep := map[string]bool{}
	for _, u := range users {
		if u.UID <= 0 {
			continue // root reads the service's own files
		}
		name := strconv.Itoa(u.UID)
		keep[name] = true
		if doc == nil {
			continue // nothing published yet: an earlier copy stays
		}
		if _, err := os.Lstat(filepath.Join(s.dir, UsersDir, name, StatusFile)); err == nil && s.copies[u.UID] == gen {
			continue
		}
		if err := s.writeCopy(u.UID, doc, rep); err != nil {
			errs = append(errs, err)
			continue
		}
		s.copies[u.UID] = gen
		s.log.Debug("status copied for a desktop user", "uid", u.UID, "user", u.Name)
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, UsersDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.dir, UsersDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		if uid, err := strconv.Atoi(e.Name()); err == nil {
			delete(s.copies, uid)
		}
		s.log.Debug("status copy removed: its user is not logged in at this computer", "uid", e.Name())
	}
	// A failure is logged once, not every Resync.
	msg := ""
	if err := errors.Join(errs...); err != nil {
		msg = err.Error()
	}
	if msg != "" && msg != s.syncErr {
		s.log.Warn("cannot keep the desktop users' copies of the status", "err", msg)
	}
	s.syncErr = msg
}

// writeCopy writes uid's copies of the status and the report.
func (s *Server) writeCopy(uid int, doc, rep []byte) error {
	users := filepath.Join(s.dir, UsersDir)
	dir := filepath.Join(users, strconv.Itoa(uid))
	for _, d := range []string{users, dir} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("status copy: %w", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("status copy: %w", err)
		}
	}
	if err := writeOwned(filepath.Join(dir, StatusFile), doc, uid); err != nil {
		return err
	}
	if rep == nil {
		return nil
	}
	return writeOwned(filepath.Join(dir, LastReportFile), rep, uid)
}

// writeOwned replaces path with data in a file of uid's, mode 0600: the
// file is given to uid before it takes path's place, so the user never
// finds a copy they cannot read.
func writeOwned(path string, data []byte, uid int) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("status copy: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		err = f.Chown(uid, -1)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("status copy: %w", err)
	}
	return nil
}

// Origin says where a Status came from.
type Origin string

// Origins of a Status.
const (
	FromService Origin = "service"
	FromFile    Origin = "file"
)

// Read returns the latest Status: from the running service's endpoint, or,
// when the service does not answer (or does not answer this user), from
// the file it saved: the user's own copy, or as root the service's file.
// It returns ErrNoStatus when there is none, and ErrNotDesktopUser to a
// user who is neither root nor logged in at this computer.
func Read(ctx context.Context, dir string) (Status, Origin, error) {
	var st Status
	data, err := fetch(ctx, filepath.Join(dir, SocketFile))
	if err == nil && len(data) > 0 {
		if err = json.Unmarshal(data, &st); err == nil {
			return st, FromService, nil
		}
	}
	data, ferr := readOwn(dir, StatusFile)
	if errors.Is(ferr, fs.ErrNotExist) {
		return st, "", ErrNoStatus
	}
	if ferr != nil {
		return st, "", ferr
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, "", fmt.Errorf("%s: %w", StatusFile, err)
	}
	return st, FromFile, nil
}

// fetch reads one document from the status socket.
func fetch(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := dial(ctx, path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	return io.ReadAll(io.LimitReader(c, maxDocument))
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxDocument))
}

// readOwn reads a status file for the user running this: their own copy
// when there is one, else the service's file in dir (root's, or the
// service's own user's). On Unix it returns ErrNotDesktopUser when that
// file is there but not the user's to read.
func readOwn(dir, name string) ([]byte, error) {
	if own := ownDir(dir); own != "" {
		data, err := readFile(filepath.Join(own, name))
		if !errors.Is(err, fs.ErrNotExist) {
			return data, err
		}
	}
	data, err := readFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrPermission) && runtime.GOOS != "windows" {
		return nil, ErrNotDesktopUser // on Windows the files' access list speaks for itself
	}
	return data, err
}

// LastReport returns the last report the service queued for the
// collector: the user's own copy, or as root the service's file. It
// returns ErrNotDesktopUser to a user who may not read it.
func LastReport(dir string) (*wardv1.Report, error) {
	data, err := readOwn(dir, LastReportFile)
	if err != nil {
		return nil, err
	}
	r := &wardv1.Report{}
	if err := protojson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%s: %w", LastReportFile, err)
	}
	return r, nil
}
