package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	ev "github.com/wardhq/ward/evidence"
)

func (a *app) evidenceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "evidence", Short: "Export evidence an auditor verifies offline with ward-verify (docs/evidence.md)"}
	cmd.PersistentFlags().StringVar(&a.caKeyFile, "ca-key-file", os.Getenv("WARD_CA_KEY_FILE"), "with --store: the CA shared in the store, opened with this key file (default $WARD_CA_KEY_FILE)")
	cmd.AddCommand(a.evidenceExportCommand())
	return cmd
}

func (a *app) evidenceExportCommand() *cobra.Command {
	var (
		deviceID, from, to, out string
		consistentWith          string
		all, withLog            bool
	)
	cmd := &cobra.Command{
		Use:   "export (--device ID | --all) --from DATE [--to DATE] [--consistent-with OLD.json] --out FILE",
		Short: "Write one device's, or the fleet's, signed reports over a period to a self-contained file for ward-verify",
		Long: `export writes an evidence file (format ward-evidence/1): the device's
sealed reports collected in the period, with the last one before it and the
first one after it, each with its signature and chain hash; every
certificate the collector issued the device, the enrolment records of the
epochs in the file and the collector CA chain; the policy documents the
reports name, with their hashes; the gaps and forks the collector recorded;
and a summary ("disk-encrypted: PASS from ... to ..."; unobserved time).
ward-verify FILE checks it without the collector (docs/evidence.md).

--all writes every device with a report collected in the period. The period
is by collected time: --from DATE is the start of that UTC day, --to DATE
includes that whole day (today: up to now), or give RFC 3339 times; --to
defaults to now. Reports older agents sent unsealed are left out (their
time is unobserved) and counted. --out must not exist; the file is written
whole under a temporary name, then linked into place, mode 0600. Each
export is written to the audit log.

The collector's evidence log (serve --log-interval) is appended to first;
the file then carries its newest checkpoint, signed by the log key under
--data/pki (log.key, made on first use), and an inclusion proof of every
report. --consistent-with OLD.json adds a proof that the log extends the
checkpoint of an earlier export: ward-verify --previous OLD.json NEW.json
checks that the collector did not rewrite its log in between.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (deviceID == "") == !all {
				return inputError{errors.New("give --device ID or --all (one of them)")}
			}
			if out == "" {
				return inputError{errors.New("--out FILE is required")}
			}
			if _, err := os.Lstat(out); err == nil {
				return inputError{fmt.Errorf("%s exists; remove it or give another --out", out)}
			}
			now := a.now().UTC()
			start, end, err := evidence.ParsePeriod(from, to, now)
			if err != nil {
				return inputError{fmt.Errorf("period: %w", err)}
			}
			ca, err := a.loadCA(now)
			if err != nil {
				return err
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			es, err := evidence.For(st)
			if err != nil {
				return err
			}
			o := evidence.Options{DeviceID: deviceID, From: start, To: end, Now: now, CA: evidence.CAChain(ca)}
			if withLog {
				if o.Log, err = a.evidenceLog(st, ca, now); err != nil {
					return err
				}
			}
			if consistentWith != "" {
				if o.Log == nil {
					return inputError{errors.New("--consistent-with needs the evidence log (not --log=false, a store that keeps one)")}
				}
				cp, err := readCheckpoint(consistentWith)
				if err != nil {
					return inputError{fmt.Errorf("--consistent-with: %w", err)}
				}
				o.ConsistentWith = cp
			}
			c := dashboard.ThisCollector(version())
			o.GeneratedBy = "ward-collector " + c.Version + " on " + c.Host
			res, err := evidence.Build(cmd.Context(), es, o)
			if errors.Is(err, evidence.ErrUnknownDevice) {
				return inputError{fmt.Errorf("--device %s: %w (ward-collector devices lists them)", deviceID, err)}
			}
			if err != nil {
				return err
			}
			if err := writeNew(out, func(w io.Writer) error { return evidence.Write(w, res.File) }); err != nil {
				return err
			}
			if err := st.AddAudit(cmd.Context(), exportAudit(actor(), now, deviceID, res)); err != nil {
				return fmt.Errorf("wrote %s, but the audit log refused its entry: %w", out, err)
			}
			fmt.Fprintf(a.stderr, "wrote %s to %s\n", res.Describe(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&deviceID, "device", "", "the device's id")
	f.BoolVar(&all, "all", false, "every device with a report collected in the period")
	f.StringVar(&from, "from", "", "the period's first day (2006-01-02, UTC) or an RFC 3339 time")
	f.StringVar(&to, "to", "", "the period's last day (included; today: up to now) or an RFC 3339 time (default now)")
	f.StringVar(&out, "out", "", "the file to write (it must not exist)")
	f.StringVar(&consistentWith, "consistent-with", "", "an earlier evidence file: prove the log now extends its checkpoint (ward-verify --previous)")
	f.BoolVar(&withLog, "log", true, "append to the evidence log and carry its checkpoint and inclusion proofs")
	return cmd
}

// evidenceLog is the evidence log of st signed by the log key under
// --data/pki (made on first use), or nil when st keeps no log.
func (a *app) evidenceLog(st any, ca *pki.Authority, now time.Time) (*evidence.Log, error) {
	if _, ok := st.(store.LogStore); !ok {
		return nil, nil
	}
	key, cert, err := ca.LogKey(a.dataDir, now)
	if err != nil {
		return nil, fmt.Errorf("evidence log key: %w", err)
	}
	return evidence.LogFor(st, key, cert), nil
}

// readCheckpoint is the log checkpoint of the evidence file at path.
func readCheckpoint(path string) (*ev.Checkpoint, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	f, err := ev.Decode(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Log == nil {
		return nil, fmt.Errorf("%s carries no log checkpoint", path)
	}
	return &f.Log.Checkpoint, nil
}

// exportAudit is the audit entry of an evidence export: who, which
// device (or the fleet) and period, and what went in.
func exportAudit(who string, at time.Time, deviceID string, res *evidence.Result) store.AuditEntry {
	target := deviceID
	if target == "" {
		target = "fleet"
	}
	return store.AuditEntry{At: at, Actor: who, Action: "evidence.export", Target: target, Detail: res.Describe()}
}
