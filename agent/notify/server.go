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
)

// maxDocument bounds what a client reads.
const maxDocument = 8 << 20

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

	mu  sync.Mutex
	doc []byte
}

// NewServer prepares dir (created mode 0755 if missing) for publishing.
func NewServer(dir string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("status directory: %w", err)
	}
	// The service runs with umask 077; local users must still reach the
	// socket and the status file, so the mode is set, not left to the umask.
	if runtime.GOOS != "windows" {
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("status directory: %w", err)
		}
	}
	return &Server{dir: dir, log: log}, nil
}

// Publish implements the service's status hook: it makes one round's
// results, with the device's waivers, the published Status and keeps the
// report for ward-agent privacy. Failures to write the files are logged:
// the socket still serves.
func (s *Server) Publish(pol *policies.Policy, results []policies.Result, r *wardv1.Report, waivers []Waiver) {
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
	s.mu.Lock()
	s.doc = doc
	s.mu.Unlock()
	if err := outbox.WriteFile(filepath.Join(s.dir, StatusFile), doc, 0o644); err != nil {
		s.log.Warn("cannot save status", "err", err)
	}
	rep, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(r)
	if err == nil {
		err = outbox.WriteFile(filepath.Join(s.dir, LastReportFile), rep, 0o644)
	}
	if err != nil {
		s.log.Warn("cannot save last report", "err", err)
	}
}

// Serve answers every connection on the status socket with the latest
// Status and closes it; it never reads from a client. It returns nil when
// ctx is cancelled, after removing the socket, and ErrUnsupported at once
// on an OS without an endpoint.
func (s *Server) Serve(ctx context.Context) error {
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

// Origin says where a Status came from.
type Origin string

// Origins of a Status.
const (
	FromService Origin = "service"
	FromFile    Origin = "file"
)

// Read returns the latest Status: from the running service's endpoint, or,
// when the service does not answer, from the file it saved. It returns
// ErrNoStatus when there is neither.
func Read(ctx context.Context, dir string) (Status, Origin, error) {
	var st Status
	data, err := fetch(ctx, filepath.Join(dir, SocketFile))
	if err == nil && len(data) > 0 {
		if err = json.Unmarshal(data, &st); err == nil {
			return st, FromService, nil
		}
	}
	data, ferr := readFile(filepath.Join(dir, StatusFile))
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

// LastReport returns the last report the service queued for the collector.
func LastReport(dir string) (*wardv1.Report, error) {
	data, err := readFile(filepath.Join(dir, LastReportFile))
	if err != nil {
		return nil, err
	}
	r := &wardv1.Report{}
	if err := protojson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%s: %w", LastReportFile, err)
	}
	return r, nil
}
