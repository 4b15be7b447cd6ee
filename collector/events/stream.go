package events

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/wardhq/ward/collector/store"
)

// File appends each event to a file as one line of JSON (an Envelope),
// for a SIEM's file collector. A batch is written with one write and
// fsynced before Send returns, so before the cursor moves past it: a
// crash can repeat the last batch, never lose one. Rotate the file by
// renaming it and sending the collector nothing: File reopens the path
// when it no longer names the file it holds open.
type File struct {
	path   string
	f      *os.File
	logger *slog.Logger
}

// OpenFile opens (creating, mode 0600) the file at path for appending.
func OpenFile(path string, logger *slog.Logger) (*File, error) {
	if logger == nil {
		logger = slog.Default()
	}
	fl := &File{path: path, logger: logger}
	if err := fl.open(); err != nil {
		return nil, err
	}
	return fl, nil
}

func (fl *File) open() error {
	f, err := os.OpenFile(fl.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	fl.f = f
	return nil
}

// reopen opens the path again when it was renamed or removed (rotated).
func (fl *File) reopen() error {
	held, err := fl.f.Stat()
	if err != nil {
		return err
	}
	now, err := os.Stat(fl.path)
	if err == nil && os.SameFile(held, now) {
		return nil
	}
	fl.f.Close()
	return fl.open()
}

// Name implements Sink.
func (fl *File) Name() string { return "file" }

// Send implements Sink.
func (fl *File) Send(_ context.Context, evs []store.Event) (int, error) {
	if err := fl.reopen(); err != nil {
		return 0, err
	}
	b := lines(evs, fl.logger)
	if _, err := fl.f.Write(b); err != nil {
		return 0, fmt.Errorf("event stream %s: %w", fl.path, err)
	}
	if err := fl.f.Sync(); err != nil {
		return 0, fmt.Errorf("event stream %s: fsync: %w", fl.path, err)
	}
	return len(evs), nil
}

// Close closes the file.
func (fl *File) Close() error { return fl.f.Close() }

// lines is the events as JSON lines; one that does not encode is logged
// and left out.
func lines(evs []store.Event, logger *slog.Logger) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		line, err := Encode(e)
		if err != nil {
			logger.Error("event stream: event left out", "event_id", e.ID, "err", err)
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
