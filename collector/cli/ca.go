package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storeopen"
)

func (a *app) caCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Show, rotate, move or share the collector CA"}
	cmd.PersistentFlags().StringVar(&a.caKeyFile, "ca-key-file", os.Getenv("WARD_CA_KEY_FILE"), "with --store: the CA shared in the store, opened with this key file (default $WARD_CA_KEY_FILE)")
	cmd.AddCommand(a.caShowCommand(), a.caRotateCommand(), a.caKeygenCommand(), a.caImportCommand(), a.caExportCommand())
	return cmd
}

// caCert is one certificate in ca show's output.
type caCert struct {
	Fingerprint string    `json:"fingerprint"`
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer,omitempty"`
	NotAfter    time.Time `json:"not_after"`
	Expired     bool      `json:"expired,omitempty"`
}

func newCACert(c *x509.Certificate, now time.Time) caCert {
	return caCert{Fingerprint: pki.Fingerprint(c.Raw), Subject: c.Subject.String(), NotAfter: c.NotAfter.UTC(), Expired: !now.Before(c.NotAfter)}
}

// caShow is the --json document of ca show.
type caShow struct {
	CA       caCert   `json:"ca"`
	Previous []caCert `json:"previous"`
	Cross    []caCert `json:"cross"`
}

func (a *app) caShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the CA agents pin, the previous CAs still trusted and the cross certificates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := a.now()
			ca, err := a.loadCA(now)
			if err != nil {
				return err
			}
			doc := caShow{CA: newCACert(ca.Cert, now), Previous: []caCert{}, Cross: []caCert{}}
			for _, c := range append(ca.Previous, ca.ExpiredPrevious...) {
				doc.Previous = append(doc.Previous, newCACert(c, now))
			}
			for _, c := range ca.Cross {
				x := newCACert(c, now)
				x.Issuer = c.Issuer.String()
				doc.Cross = append(doc.Cross, x)
			}
			if asJSON {
				return a.printJSON(doc)
			}
			fmt.Fprintf(a.stdout, "CA fingerprint: %s\n  subject:   %s\n  not after: %s%s\n", doc.CA.Fingerprint, doc.CA.Subject, doc.CA.NotAfter.Format(time.RFC3339), expiredNote(doc.CA))
			if len(doc.Previous) == 0 {
				fmt.Fprintln(a.stdout, "previous CAs: none")
			} else {
				fmt.Fprintln(a.stdout, "previous CAs (their device certificates are accepted until they expire):")
			}
			for _, c := range doc.Previous {
				fmt.Fprintf(a.stdout, "  %s  %s  not after %s%s\n", c.Fingerprint, c.Subject, c.NotAfter.Format(time.RFC3339), expiredNote(c))
			}
			if len(doc.Cross) == 0 {
				fmt.Fprintln(a.stdout, "cross certificates: none")
			} else {
				fmt.Fprintln(a.stdout, "cross certificates (the CA signed by a previous CA, for agents that still trust only that one):")
			}
			for _, c := range doc.Cross {
				fmt.Fprintf(a.stdout, "  %s  signed by %s  not after %s%s\n", c.Fingerprint, c.Issuer, c.NotAfter.Format(time.RFC3339), expiredNote(c))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func expiredNote(c caCert) string {
	if c.Expired {
		return " (expired)"
	}
	return ""
}

func (a *app) caRotateCommand() *cobra.Command {
	var (
		lifetime time.Duration
		force    bool
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the collector CA with a new one, cross-signed by the old so agents keep working",
		Long: `rotate makes a new collector CA (ECDSA P-256) under --data/pki, valid for
--lifetime, and cross-signs it with the old CA, whose key it then destroys.
The old CA certificate stays in ca-previous.crt: device certificates it
issued are accepted until they expire, and agents that trust only it
verify the collector through the cross certificate until they move to the
new CA at their next certificate renewal (docs/enrolment.md, "CA lifetime
and rotation").

Stop the collector first, or restart it right after: serve loads the CA
when it starts, and a collector running on the old CA keeps signing with
it. Nothing tells rotate whether a collector is running on --data.

It refuses to rotate again within a device certificate lifetime (90 days)
of the previous rotation, while agents may still trust only the CA before:
that CA's key is gone, so nothing could chain the next CA to it. --force
rotates anyway, cutting those agents off (they must enrol again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lifetime <= 0 {
				return inputError{fmt.Errorf("--lifetime %s: want a positive duration (87600h is 10 years)", lifetime)}
			}
			if lifetime < pki.DefaultDeviceLifetime {
				return inputError{fmt.Errorf("--lifetime %s: want at least the device certificate lifetime, %s (device certificates never outlive the CA)", lifetime, pki.DefaultDeviceLifetime)}
			}
			now := a.now()
			old, err := a.loadCA(now)
			if err != nil {
				return err
			}
			if until := old.Cert.NotBefore.Add(pki.DefaultDeviceLifetime); len(old.Previous) > 0 && now.Before(until) && !force {
				return fmt.Errorf("the CA was rotated on %s: agents may still trust only the CA before it (%s) until their device certificates renew or expire; rotate after %s, or pass --force to cut them off",
					old.Cert.NotBefore.UTC().Format(time.DateOnly), old.Previous[len(old.Previous)-1].Subject, until.UTC().Format(time.RFC3339))
			}
			var ca *pki.Authority
			if a.sharedCA() {
				ca, err = a.rotateShared(cmd.Context(), now, lifetime)
			} else {
				ca, err = pki.Rotate(a.dataDir, now, lifetime)
			}
			if errors.Is(err, pki.ErrNotCrossable) {
				return fmt.Errorf("%w: every enrolled agent would have to enrol again; to do that deliberately, stop the collector, move %s aside and start it again", err, filepath.Join(a.dataDir, "pki"))
			}
			if err != nil {
				return err
			}
			if a.sharedCA() {
				fmt.Fprintln(a.stdout, "rotated the collector CA in the store; running collectors serve with it from their next connection")
			} else {
				fmt.Fprintf(a.stdout, "rotated the collector CA in %s\n", filepath.Join(a.dataDir, "pki"))
			}
			fmt.Fprintf(a.stdout, "new CA fingerprint: %s\n  subject:   %s\n  not after: %s\n", ca.Fingerprint(), ca.Cert.Subject, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
			fmt.Fprintf(a.stdout, "previous CA: %s (%s), key destroyed, cross-signed the new CA\n", old.Fingerprint(), old.Cert.Subject)
			renew := pki.DefaultDeviceLifetime * 2 / 3
			fmt.Fprintf(a.stdout, `next:
  1. restart the collector (serve loads the CA at start); until then it serves and signs with the previous CA
  2. new enrolment commands use --ca-fingerprint %s (update install scripts and packages that carry the previous one)
  3. enrolled agents move to the new CA at their next device certificate renewal, within 2/3 of its lifetime (%d days at the default %d)
  4. the previous CA stays trusted until its last device certificate expired (at most %d days from now at the default lifetime)
`, ca.Fingerprint(), int(renew.Hours()/24), int(pki.DefaultDeviceLifetime.Hours()/24), int(pki.DefaultDeviceLifetime.Hours()/24))
			return nil
		},
	}
	f := cmd.Flags()
	lifetime = pki.DefaultCALifetime
	f.Var(lifetimeFlag{&lifetime, time.Nanosecond}, "lifetime", "validity of the new CA, in days (3650d) or hours (87600h)")
	f.BoolVar(&force, "force", false, "rotate even within a device certificate lifetime of the previous rotation, cutting off agents that still trust only the CA before")
	return cmd
}

// loadCA loads the CA without creating one: the store's with --store
// and --ca-key-file, else the data directory's.
func (a *app) loadCA(now time.Time) (*pki.Authority, error) {
	if a.sharedCA() {
		ctx := context.Background()
		sec, key, closeStore, err := a.secrets(ctx)
		if err != nil {
			return nil, err
		}
		defer closeStore()
		return pki.LoadShared(ctx, sec, key, now)
	}
	ca, err := pki.Load(a.dataDir, now)
	if errors.Is(err, pki.ErrNoCA) {
		return nil, inputError{fmt.Errorf("%w (run ward-collector serve --data %s first, or pass --data)", err, a.dataDir)}
	}
	return ca, err
}

func (a *app) caKeygenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen FILE",
		Short: "Write a new CA key file (32 random bytes) for collectors that share a CA in the store",
		Long: `keygen writes 32 random bytes, as hexadecimal, to FILE (mode 0600),
refusing to overwrite one. Give the same file to every collector on the
store (serve --ca-key-file or WARD_CA_KEY_FILE): the CA is sealed in the
database under a key derived from it, and a collector with another file
refuses to start (docs/multi-collector.md). Keep a copy with the
database backups: without it the CA cannot be opened.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pki.WriteCAKeyFile(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote a CA key file to %s\n", args[0])
			return nil
		},
	}
}

// sharedCA reports whether the ca commands work on the CA in the store.
func (a *app) sharedCA() bool { return !storeopen.IsSQLite(a.spec()) && a.caKeyFile != "" }

// secrets opens the store's secrets and the CA key file.
func (a *app) secrets(ctx context.Context) (store.Secrets, *pki.CAKey, func(), error) {
	if storeopen.IsSQLite(a.spec()) || a.caKeyFile == "" {
		return nil, nil, nil, inputError{errors.New("the CA in the store needs --store and --ca-key-file (or WARD_STORE and WARD_CA_KEY_FILE)")}
	}
	key, err := pki.ReadCAKeyFile(a.caKeyFile)
	if err != nil {
		return nil, nil, nil, inputError{err}
	}
	st, err := a.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	sec, ok := st.(store.Secrets)
	if !ok {
		st.Close()
		return nil, nil, nil, inputError{errors.New("this store cannot share a CA")}
	}
	return sec, key, func() { st.Close() }, nil
}

// notifyCA tells running collectors that the CA in the store changed.
func notifyCA(ctx context.Context, sec store.Secrets) {
	if n, ok := sec.(interface {
		Notify(context.Context, store.Change) error
	}); ok {
		n.Notify(ctx, store.Change{Kind: store.ChangeCA}) //nolint:errcheck // they also load it at start
	}
}

func (a *app) rotateShared(ctx context.Context, now time.Time, lifetime time.Duration) (*pki.Authority, error) {
	sec, key, closeStore, err := a.secrets(ctx)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	_, ca, err := pki.RotateShared(ctx, sec, key, now, lifetime)
	if errors.Is(err, store.ErrSecretChanged) {
		return nil, fmt.Errorf("%w: another rotation or import won; run ca show and rotate again if still needed", err)
	}
	if err == nil {
		notifyCA(ctx, sec)
	}
	return ca, err
}

func (a *app) caImportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "import --store URL --ca-key-file FILE",
		Short: "Move the CA of --data into the store, sealed, for collectors that share it",
		Long: `import seals the CA under --data/pki (key, certificate, previous CAs and
cross certificates) with --ca-key-file and stores it in --store, so that
every collector started with --store and the same --ca-key-file signs
with it and accepts the devices it enrolled. Importing the same CA again
is no change; a store holding another CA is refused. Afterwards, move
--data/pki/ca.key away from the data directory: serve --ca-key-file
refuses a data directory with a CA of its own (docs/multi-collector.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := a.now()
			ca, err := pki.Load(a.dataDir, now)
			if errors.Is(err, pki.ErrNoCA) {
				return inputError{fmt.Errorf("%w (pass the --data of the collector whose CA to import)", err)}
			}
			if err != nil {
				return err
			}
			sec, key, closeStore, err := a.secrets(cmd.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			created, err := pki.ImportShared(cmd.Context(), sec, key, ca, now)
			if err != nil {
				return err
			}
			if created {
				notifyCA(cmd.Context(), sec)
				fmt.Fprintf(a.stdout, "imported CA %s (%s) into the store\n", ca.Fingerprint(), ca.Cert.Subject)
			} else {
				fmt.Fprintf(a.stdout, "the store already holds CA %s: no change\n", ca.Fingerprint())
			}
			fmt.Fprintf(a.stdout, "next: move %s out of the data directory, then start every collector with --store and --ca-key-file\n", filepath.Join(a.dataDir, "pki", "ca.key"))
			return nil
		},
	}
}

func (a *app) caExportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "export --store URL --ca-key-file FILE",
		Short: "Write the CA in the store to --data/pki, for one collector without the shared CA",
		Long: `export opens the CA in the store with --ca-key-file and writes it to
--data/pki as the files a single collector uses (ca.crt, ca.key mode
0600, ca-previous.crt, ca-cross.crt), refusing a directory that holds a
CA already.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sec, key, closeStore, err := a.secrets(cmd.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			ca, err := pki.LoadShared(cmd.Context(), sec, key, a.now())
			if err != nil {
				return err
			}
			if err := pki.Export(ca, a.dataDir); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote CA %s to %s\n", ca.Fingerprint(), filepath.Join(a.dataDir, "pki"))
			return nil
		},
	}
}
