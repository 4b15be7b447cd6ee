package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

// settingsFile holds, in the data directory, what serve was started with
// that the admin commands must judge by too: so far the agents' report
// interval, which makes a device stale after 3 × interval. serve writes it
// at every start; fleet, devices, device and export read it, so the CLI
// and the dashboard call the same devices stale.
const settingsFile = "settings.json"

// defaultInterval is the agents' report interval when serve was never
// given one.
const defaultInterval = time.Hour

// settings is settings.json.
type settings struct {
	// Interval is the agents' report interval, as a Go duration ("1h0m0s").
	Interval string `json:"interval"`
}

// readSettings reads dir's settings.json; a missing file is the zero
// settings (a collector from before the file, or one never started).
func readSettings(dir string) (settings, error) {
	var s settings
	b, err := os.ReadFile(filepath.Join(dir, settingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, settingsFile), err)
	}
	return s, nil
}

// interval is the stored interval, or defaultInterval without one.
func (s settings) interval(dir string) (time.Duration, error) {
	if s.Interval == "" {
		return defaultInterval, nil
	}
	d, err := time.ParseDuration(s.Interval)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: interval %q: want a positive duration", filepath.Join(dir, settingsFile), s.Interval)
	}
	return d, nil
}

// writeSettings replaces dir's settings.json whole (a temporary file
// renamed over it), so a reader never sees half of one.
func writeSettings(dir string, s settings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".settings-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, settingsFile))
}

// staleFlag adds --interval, an override of the interval serve stored in
// the data directory; staleAfter then says how long a device may be
// silent before it is stale.
func staleFlag(cmd *cobra.Command, interval *time.Duration) {
	cmd.Flags().DurationVar(interval, "interval", defaultInterval, "override the agents' report interval that serve stored in --data ("+settingsFile+"); a device is stale after 3 × interval without a report")
}

// applySettings gives a command's --interval, when it has one and it
// was not given, the interval serve stored in the data directory, so
// every command judges staleness as the running collector does.
func (a *app) applySettings(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup("interval")
	if f == nil {
		return nil
	}
	if f.Changed {
		if d, err := time.ParseDuration(f.Value.String()); err != nil || d <= 0 {
			return inputError{fmt.Errorf("--interval %s: want a positive duration", f.Value)}
		}
		return nil
	}
	s, err := readSettings(a.dataDir)
	if err != nil {
		return err
	}
	d, err := s.interval(a.dataDir)
	if err != nil {
		return err
	}
	return f.Value.Set(d.String())
}

// saveInterval stores the interval serve runs with, for its next start
// and the admin commands.
func (a *app) saveInterval(d time.Duration) error {
	s, err := readSettings(a.dataDir)
	if err != nil {
		return err
	}
	if s.Interval == d.String() {
		return nil
	}
	s.Interval = d.String()
	if err := writeSettings(a.dataDir, s); err != nil {
		return fmt.Errorf("store the report interval in %s: %w", a.dataDir, err)
	}
	return nil
}
