package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/store"
)

// TOTPKeyFile is the TOTP sealing key's file name in the data directory
// (docs/signin.md, "Secrets at rest").
const TOTPKeyFile = "totp.key"

// signinFlags are serve's flags for the dashboard's second factor and
// OpenID Connect sign-in. Each OIDC flag falls back to an environment
// variable; the client secret is read from a file or $WARD_OIDC_CLIENT_SECRET
// only, never from the command line (which other users can see), and is
// never logged.
type signinFlags struct {
	totpKeyFile  string
	issuer       string
	clientID     string
	secretFile   string
	redirectURL  string
	domains      []string
	roleClaim    string
	adminValues  []string
	viewerValues []string
	scopes       []string
	label        string
}

func (s *signinFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.totpKeyFile, "totp-key-file", "", "32-byte key (64 hex digits) sealing local users' TOTP secrets in the store; default --data/"+TOTPKeyFile+", created on first start; give every collector on one store the same file ($WARD_TOTP_KEY_FILE)")
	f.StringVar(&s.issuer, "oidc-issuer", "", "OpenID Connect issuer URL: offers sign-in through it beside local accounts ($WARD_OIDC_ISSUER)")
	f.StringVar(&s.clientID, "oidc-client-id", "", "OpenID Connect client id ($WARD_OIDC_CLIENT_ID)")
	f.StringVar(&s.secretFile, "oidc-client-secret-file", "", "file holding the OpenID Connect client secret (default $WARD_OIDC_CLIENT_SECRET; empty for a public client)")
	f.StringVar(&s.redirectURL, "oidc-redirect-url", "", "this dashboard's callback as registered at the provider, https://HOST"+dashboard.OIDCCallbackPath+" ($WARD_OIDC_REDIRECT_URL)")
	f.StringArrayVar(&s.domains, "oidc-allowed-domain", nil, "e-mail domain allowed to sign in (repeatable; default any; $WARD_OIDC_ALLOWED_DOMAINS, comma-separated)")
	f.StringVar(&s.roleClaim, "oidc-role-claim", "", "ID token claim holding groups or roles, dotted for nested (default groups; $WARD_OIDC_ROLE_CLAIM)")
	f.StringArrayVar(&s.adminValues, "oidc-admin-group", nil, "claim value that makes an admin (repeatable; default ward-admins)")
	f.StringArrayVar(&s.viewerValues, "oidc-viewer-group", nil, "claim value that makes a viewer (repeatable; default ward-viewers); anyone with neither is refused")
	f.StringArrayVar(&s.scopes, "oidc-scope", nil, "scope to ask for (repeatable; default openid, email, profile)")
	f.StringVar(&s.label, "oidc-label", "", "the sign-in page's button (default \"Sign in with single sign-on\")")
}

func envOr(v, name string) string {
	if v != "" {
		return v
	}
	return os.Getenv(name)
}

// oidc returns the OpenID Connect configuration, or nil when no issuer is
// set. Bad or missing values are input errors.
func (s *signinFlags) oidc() (*dashboard.OIDC, error) {
	o := &dashboard.OIDC{
		Issuer: envOr(s.issuer, "WARD_OIDC_ISSUER"), ClientID: envOr(s.clientID, "WARD_OIDC_CLIENT_ID"),
		RedirectURL: envOr(s.redirectURL, "WARD_OIDC_REDIRECT_URL"), RoleClaim: envOr(s.roleClaim, "WARD_OIDC_ROLE_CLAIM"),
		AllowedDomains: s.domains, AdminValues: s.adminValues, ViewerValues: s.viewerValues, Scopes: s.scopes, Label: s.label,
	}
	if o.Issuer == "" {
		if o.ClientID != "" || o.RedirectURL != "" || s.secretFile != "" {
			return nil, inputError{errors.New("--oidc-client-id, --oidc-redirect-url and --oidc-client-secret-file need --oidc-issuer")}
		}
		return nil, nil
	}
	if len(o.AllowedDomains) == 0 {
		if v := os.Getenv("WARD_OIDC_ALLOWED_DOMAINS"); v != "" {
			o.AllowedDomains = strings.Split(v, ",")
		}
	}
	if o.ClientID == "" || o.RedirectURL == "" {
		return nil, inputError{errors.New("--oidc-issuer needs --oidc-client-id and --oidc-redirect-url")}
	}
	o.ClientSecret = os.Getenv("WARD_OIDC_CLIENT_SECRET")
	if s.secretFile != "" {
		b, err := os.ReadFile(s.secretFile)
		if err != nil {
			return nil, inputError{fmt.Errorf("--oidc-client-secret-file: %w", err)}
		}
		o.ClientSecret = strings.TrimSpace(string(b))
		if o.ClientSecret == "" {
			return nil, inputError{fmt.Errorf("--oidc-client-secret-file %s is empty", s.secretFile)}
		}
	}
	return o, nil
}

// totpKey reads the TOTP key file, creating the data directory's default
// one (mode 0600) on first start. A file named with --totp-key-file or
// $WARD_TOTP_KEY_FILE is never created: collectors sharing a store must
// be given the same one.
func (s *signinFlags) totpKey(dataDir string) ([]byte, error) {
	path := envOr(s.totpKeyFile, "WARD_TOTP_KEY_FILE")
	if path == "" {
		path = filepath.Join(dataDir, TOTPKeyFile)
		k := make([]byte, dashboard.TOTPKeySize)
		rand.Read(k) // crypto/rand does not fail
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.WriteString(hex.EncodeToString(k) + "\n")
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("write TOTP key file %s: %w", path, err)
			}
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("TOTP key file: %w", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, inputError{fmt.Errorf("TOTP key file: %w", err)}
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if len(b) == dashboard.TOTPKeySize {
		k, err = b, nil
	}
	if err != nil || len(k) != dashboard.TOTPKeySize {
		return nil, inputError{fmt.Errorf("TOTP key file %s: want %d random bytes, raw or as %d hexadecimal digits (openssl rand -hex 32)", path, dashboard.TOTPKeySize, 2*dashboard.TOTPKeySize)}
	}
	return k, nil
}

// apply sets the dashboard's sign-in configuration from the flags.
func (s *signinFlags) apply(dataDir string, dc *dashboard.Config) error {
	k, err := s.totpKey(dataDir)
	if err != nil {
		return err
	}
	dc.TOTPKey = k
	if dc.OIDC, err = s.oidc(); err != nil {
		return err
	}
	return nil
}

// userTOTPResetCommand is `user totp-reset NAME`: the way back for a user
// who lost the phone, and how a second factor is moved to a new one.
func (a *app) userTOTPResetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "totp-reset NAME",
		Short: "Remove a user's TOTP second factor (lost phone); the user signs in with the password and may set up a new one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			si, ok := st.(store.SignIn)
			if !ok {
				return fmt.Errorf("store %T has no second factors", st)
			}
			if _, err := st.User(cmd.Context(), name); errors.Is(err, store.ErrNotFound) {
				return inputError{fmt.Errorf("no user %s (ward-collector user list shows them)", name)}
			} else if err != nil {
				return err
			}
			t, err := si.TOTP(cmd.Context(), name)
			if errors.Is(err, store.ErrNotFound) {
				return inputError{fmt.Errorf("user %s has no second factor: nothing to reset", name)}
			} else if err != nil {
				return err
			}
			if err := si.DeleteTOTP(cmd.Context(), name); err != nil {
				return err
			}
			was := "unconfirmed"
			if t.ConfirmedAt != nil {
				was = "on since " + t.ConfirmedAt.UTC().Format("2006-01-02 15:04 UTC")
			}
			if err := st.AddAudit(cmd.Context(), store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "totp.reset", Target: name, Detail: "second factor removed (was " + was + ")"}); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed the second factor of %s (was %s); they sign in with the password alone until they set up a new one\n", name, was)
			return nil
		},
	}
}
