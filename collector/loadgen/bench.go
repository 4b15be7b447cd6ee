package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// Config is one ward-loadgen run.
type Config struct {
	// Addr, Fingerprint and Token are what an agent enrols with.
	Addr, Fingerprint, Token string
	// Devices is how many devices enrol and report.
	Devices int
	// EnrollConcurrency is how many enrolments are in flight at once.
	EnrollConcurrency int
	// Bundles is the directory of replay bundles (agent/testdata/bundles).
	Bundles string
	// Run is the measured run; with neither Duration nor Rounds, Bench
	// only enrols.
	Run RunConfig
	// Ceiling also measures the no-op ceiling with the same loop.
	Ceiling bool
	// StartCeiling starts it with its CA in dir (default StartCeiling,
	// in this process).
	StartCeiling func(dir string) (*Ceiling, error)
	// Stored opens the collector's store to verify it (nil: not verified).
	Stored func(context.Context) (Stored, error)
	// Progress receives a line per phase (nil: none).
	Progress io.Writer
}

// Summary is what a run measured.
type Summary struct {
	Policy    string       `json:"policy"`
	Bundles   []string     `json:"bundles"`
	Enrolment EnrollResult `json:"enrolment"`
	// EnrolCeiling is the same enrolment loop against the no-op
	// ceiling's Enroll (with Config.Ceiling), EnrolRatio Ward's
	// enrolments per second over its.
	EnrolCeiling *EnrollResult `json:"enrolment_ceiling,omitempty"`
	EnrolRatio   float64       `json:"enrolment_ratio,omitempty"`
	Ward         *RunResult    `json:"ward,omitempty"`
	Ceiling      *RunResult    `json:"ceiling,omitempty"`
	// Ratio is Ward's reports per second over the ceiling's.
	Ratio  float64       `json:"ratio,omitempty"`
	Verify *Verification `json:"verify,omitempty"`
}

// Bench enrols cfg.Devices devices, runs them against the collector and,
// with cfg.Ceiling, against the no-op ceiling, and verifies the store.
// It returns an error when any step could not be done; a verification
// that found a loss is a Summary with Verify.OK false, and an error.
func Bench(ctx context.Context, cfg Config) (*Summary, error) {
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	if cfg.Devices <= 0 {
		return nil, errors.New("at least one device is needed")
	}
	now := time.Now()
	payloads, err := LoadPayloads(ctx, cfg.Bundles, now)
	if err != nil {
		return nil, err
	}
	s := &Summary{Bundles: payloads.Bundles()}

	say("generating %d device keys", cfg.Devices)
	t0 := time.Now()
	devs, err := NewDevices(ctx, cfg.Devices, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	keys := time.Since(t0)
	var ceiling *Ceiling
	if cfg.Ceiling {
		dir, err := os.MkdirTemp("", "ward-loadgen-ceiling-")
		if err != nil {
			return s, err
		}
		defer os.RemoveAll(dir)
		start := cfg.StartCeiling
		if start == nil {
			start = StartCeiling
		}
		if ceiling, err = start(dir); err != nil {
			return s, err
		}
		defer ceiling.Stop()
		// First, while the devices still hold their requests: the same
		// enrolment loop against the ceiling's no-op Enroll.
		say("enrolling %d devices at the no-op ceiling", cfg.Devices)
		_, ec, err := Enroll(ctx, EnrollConfig{Addr: ceiling.Addr, Fingerprint: ceiling.Fingerprint(), Token: "ceiling",
			Concurrency: cfg.EnrollConcurrency, Payloads: payloads, NoOp: true}, devs)
		if err != nil {
			return s, fmt.Errorf("ceiling enrolment: %w", err)
		}
		s.EnrolCeiling = &ec
	}
	say("enrolling %d devices at %s", cfg.Devices, cfg.Addr)
	devs, s.Enrolment, err = Enroll(ctx, EnrollConfig{Addr: cfg.Addr, Fingerprint: cfg.Fingerprint, Token: cfg.Token,
		Concurrency: cfg.EnrollConcurrency, Payloads: payloads}, devs)
	s.Enrolment.KeySeconds = keys.Seconds()
	if s.EnrolCeiling != nil && s.EnrolCeiling.PerSec > 0 {
		s.EnrolRatio = s.Enrolment.PerSec / s.EnrolCeiling.PerSec
	}
	if err != nil {
		return s, err
	}
	if s.Enrolment.Enrolled < cfg.Devices {
		// Failed enrolments are a measurement (counted by code); the
		// devices that enrolled still report.
		say("%d of %d devices enrolled (errors %s); going on with them", s.Enrolment.Enrolled, cfg.Devices, errorsText(s.Enrolment.Errors))
	}
	ward := WardTarget(cfg.Addr, s.Enrolment.CA)
	pol, compact, err := fetchPolicy(ctx, ward, devs[0])
	if err != nil {
		return s, err
	}
	ward.Compact = compact
	s.Policy = fmt.Sprintf("%s v%d", pol.Name, pol.Version)
	payloads.Evaluate(ctx, pol, now)
	if cfg.Run.Duration <= 0 && cfg.Run.Rounds <= 0 {
		return s, nil
	}

	say("reporting to the collector: %s, rate %s, %d in flight, for %s", cfg.Run.Mode, rateText(cfg.Run.Rate), cfg.Run.Concurrency, cfg.Run.Duration)
	if s.Ward, err = Run(ctx, ward, devs, payloads, cfg.Run); err != nil {
		return s, err
	}
	if ceiling != nil {
		t, err := ceiling.Target(devs)
		if err != nil {
			return s, err
		}
		say("reporting to the no-op ceiling: same loop, payloads and mode")
		if s.Ceiling, err = Run(ctx, t, devs, payloads, cfg.Run); err != nil {
			return s, err
		}
		if s.Ceiling.PerSec > 0 {
			s.Ratio = s.Ward.PerSec / s.Ceiling.PerSec
		}
	}
	if cfg.Stored != nil {
		say("verifying the store: every acknowledged report stored exactly once")
		st, err := cfg.Stored(ctx)
		if err != nil {
			return s, err
		}
		defer st.Close()
		v, err := Verify(ctx, st, devs, s.Ward)
		if err != nil {
			return s, err
		}
		s.Verify = &v
		if !v.OK {
			return s, fmt.Errorf("store does not match the acknowledgements: %d missing, %d duplicated, %d unexpected, %d chain gaps, %d chain forks",
				v.Missing, v.Duplicated, v.Unexpected, v.Gaps, v.Forks)
		}
	}
	return s, nil
}

// fetchPolicy asks the collector for the policy of the devices' group,
// as the agent does on its first round, and whether it takes compact
// report forms.
func fetchPolicy(ctx context.Context, t Target, d *Device) (*policies.Policy, bool, error) {
	conn, err := grpc.NewClient(t.Addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig(t, d))))
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := wardv1grpc.NewAgentServiceClient(conn).GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentHash: "none"})
	if err != nil {
		return nil, false, fmt.Errorf("fetch policy: %w", err)
	}
	var pol *policies.Policy
	if len(resp.Document) == 0 {
		pol, err = policies.Embedded(resp.Name)
	} else {
		pol, err = policies.Parse("policy.yaml", resp.Document)
	}
	return pol, resp.CompactReports, err
}

func rateText(r float64) string {
	if r <= 0 {
		return "flat out"
	}
	return fmt.Sprintf("%g/s", r)
}
