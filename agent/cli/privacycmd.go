package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/service"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// hostname is os.Hostname; tests replace it.
var hostname = os.Hostname

// privacyCommand shows, in plain words, what the agent sends, when and to
// whom, and with --json the last report exactly as sent.
func (a *app) privacyCommand() *cobra.Command {
	var lang, dir, state string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "privacy [--json] [--lang LANG]",
		Short: "Show what Ward sends to your organisation, when and to whom",
		Long: `privacy says in plain words, in your language, what Ward sends to your
organisation (read from the last report the Ward service prepared), when, to
which server, what it sends once at enrolment (this computer's name among
it), and what it never sends.

--json prints the last report exactly as sent instead (protobuf JSON, in the
compact form the collector takes: results without texts, pending updates by
count and fingerprint when the policy reads no names, and facts unchanged
since the last report by their fingerprint).

Only root and the people logged in at this computer (not over SSH) can read
it; on Linux without systemd-logind, only root. It exits 2 when it may not
read it.`,
		Args: args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			cfg, _ := loadUserConfig(userConfigPath())
			lang = chooseLang(a.stderr, lang, cfg.Lang)
			if !asJSON {
				// The raw report stays byte for byte what was sent.
				a.rtlOutput(lang)
			}
			r, err := notify.LastReport(dir)
			if errors.Is(err, fs.ErrNotExist) {
				if asJSON {
					fmt.Fprintln(a.stderr, i18n.T(lang, "privacy.none"))
					return nil
				}
				fmt.Fprintln(a.stdout, i18n.T(lang, "privacy.none"))
				return nil
			}
			if errors.Is(err, notify.ErrNotDesktopUser) {
				fmt.Fprintln(a.stdout, notAllowed(lang, "ward-agent privacy"))
				return exitError{ExitUnknown}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printReportJSON(a.stdout, r)
			}
			if state == "" {
				state = a.layout.StateDir
			}
			host, _ := hostname()
			renderPrivacy(a.stdout, lang, r, readDestination(state), host, time.Local)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the last report exactly as sent (protobuf JSON)")
	cmd.Flags().StringVar(&lang, "lang", "", "language: "+strings.Join(i18n.Languages, ", "))
	cmd.Flags().StringVar(&dir, "status-dir", notify.DefaultDir(), "where the service publishes its status")
	cmd.Flags().StringVar(&state, "state", "", "state directory, for the collector's address (default "+enroll.DefaultStateDir()+")")
	return cmd
}

// printReportJSON prints the report as protobuf JSON with the proto field
// names, indented.
func printReportJSON(w io.Writer, r *wardv1.Report) error {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
	if err != nil {
		return err
	}
	// protojson varies its spacing on purpose; json.Indent makes it
	// stable and readable.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// destination is where reports go, as far as this user can tell.
type destination struct {
	// collector is the address from device.json; empty when enrolled is
	// false or the file could not be read.
	collector string
	// enrolled is false when the state holds no enrolment; readable is
	// false when it could not be read (the state directory is root's).
	enrolled, readable bool
}

// readDestination reads the collector's address from the enrolment record
// (only device.json: no key is read).
func readDestination(state string) destination {
	raw, err := os.ReadFile(filepath.Join(state, enroll.DeviceFile))
	if errors.Is(err, fs.ErrNotExist) {
		return destination{readable: true}
	}
	var d enroll.Device
	if err != nil || json.Unmarshal(raw, &d) != nil || d.Collector == "" {
		return destination{enrolled: true}
	}
	return destination{collector: d.Collector, enrolled: true, readable: true}
}

// renderPrivacy writes the plain-words summary: to whom, when, what the
// last report r holds, what is sent at enrolment, what never is.
func renderPrivacy(w io.Writer, lang string, r *wardv1.Report, dest destination, host string, loc *time.Location) {
	t := func(id string, pairs ...string) string { return i18n.T(lang, id, pairs...) }
	line := func(id string, pairs ...string) { fmt.Fprintln(w, t(id, pairs...)) }
	line("privacy.title")
	fmt.Fprintln(w)
	switch {
	case !dest.readable:
		line("privacy.to_hidden")
	case !dest.enrolled:
		line("privacy.to_none")
	default:
		line("privacy.to", "collector", dest.collector)
	}
	if dest.enrolled || !dest.readable {
		line("privacy.when", "minutes", strconv.Itoa(int(service.DefaultInterval/time.Minute)))
	}
	fmt.Fprintln(w)
	line("privacy.what", "sequence", strconv.FormatUint(r.GetSequence(), 10),
		"checked", notify.FormatTime(r.GetCollectedAt().AsTime(), loc))
	if f := r.GetFacts(); f != nil {
		renderFacts(w, t, f, loc)
	} else if len(r.GetBaseFacts()) > 0 {
		// An unchanged round (docs/enrolment.md, "Report size").
		fmt.Fprintln(w, "- "+t("privacy.facts_same", "digest", "sha256:"+hex.EncodeToString(r.GetBaseFacts())))
	}
	if r.GetResultsAsBase() {
		line("privacy.results_unchanged")
	} else {
		var pass, fail, unknown int
		for _, res := range r.GetResults() {
			switch res.GetStatus() {
			case wardv1.ResultStatus_RESULT_STATUS_PASS:
				pass++
			case wardv1.ResultStatus_RESULT_STATUS_FAIL:
				fail++
			default:
				unknown++
			}
		}
		line("privacy.results_count", "policy", r.GetPolicyName(), "version", strconv.Itoa(int(r.GetPolicyVersion())),
			"pass", strconv.Itoa(pass), "fail", strconv.Itoa(fail), "unknown", strconv.Itoa(unknown))
	}
	renderConnectivity(w, t, r.GetConnectivity())
	line("privacy.meta", "version", nonEmpty(r.GetAgentVersion(), "?"))
	if r.GetSeal() != nil {
		line("privacy.seal")
	}
	fmt.Fprintln(w)
	line("privacy.also")
	fmt.Fprintln(w)
	line("privacy.enrolment", "hostname", nonEmpty(host, "?"))
	fmt.Fprintln(w)
	line("privacy.never_sent")
	line("privacy.address")
	fmt.Fprintln(w)
	line("privacy.raw")
}

// renderFacts lists the facts of a report, family by family, as what they
// say (not their values' encoding).
func renderFacts(w io.Writer, t func(string, ...string) string, f *wardv1.Facts, loc *time.Location) {
	line := func(id string, pairs ...string) { fmt.Fprintln(w, t(id, pairs...)) }
	answer := func(b *bool) string {
		switch {
		case b == nil:
			return t("privacy.not_known")
		case *b:
			return t("privacy.yes")
		}
		return t("privacy.no")
	}

	if osf := f.GetOs(); osf != nil {
		var parts []string
		name := strings.TrimSpace(nonEmpty(osf.GetName(), osf.GetPlatform()) + " " + nonEmpty(osf.GetDisplayVersion(), osf.GetVersion()))
		for _, p := range []string{name, osf.GetBuild(), osf.GetKernel(), osf.GetArchitecture()} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			line("privacy.system", "system", strings.Join(parts, ", "))
		}
	}

	vols := f.GetDiskEncryption().GetVolumes()
	if len(vols) == 0 {
		line("privacy.disk_none")
	} else {
		line("privacy.disk_title")
		var keys bool
		for _, v := range vols {
			name := nonEmpty(v.GetMountPoint(), v.GetDevice(), "?")
			if v.GetMountPoint() != "" && v.GetDevice() != "" {
				name += " (" + v.GetDevice() + ")"
			}
			switch {
			case v.GetConversion() == wardv1.Conversion_CONVERSION_ENCRYPTING:
				line("privacy.disk_encrypting", "volume", name)
			case v.Encrypted == nil:
				line("privacy.disk_unknown", "volume", name)
			case !v.GetEncrypted():
				line("privacy.disk_off", "volume", name)
			case v.GetProtection() == wardv1.Protection_PROTECTION_SUSPENDED || v.GetProtection() == wardv1.Protection_PROTECTION_OFF:
				line("privacy.disk_suspended", "volume", name)
			default:
				line("privacy.disk_on", "volume", name)
			}
			keys = keys || len(v.GetKeyProtectors()) > 0
		}
		if keys {
			line("privacy.disk_keys")
		}
	}

	if p := f.GetPatchLevel(); p != nil {
		line("privacy.updates_title")
		if p.PendingUpdates == nil && p.PendingSecurityUpdates == nil {
			line("privacy.updates_unknown")
		} else {
			if p.PendingUpdates != nil {
				line("privacy.updates_count", "count", strconv.Itoa(int(p.GetPendingUpdates())))
			}
			if p.PendingSecurityUpdates != nil {
				line("privacy.updates_security", "count", strconv.Itoa(int(p.GetPendingSecurityUpdates())))
			}
			switch {
			case len(p.GetPending()) > 0:
				line("privacy.updates_names", "count", strconv.Itoa(len(p.GetPending())))
			case p.GetPendingUpdates() > 0 || len(p.GetPendingDigest()) > 0:
				line("privacy.updates_digest")
			}
		}
		if at := p.GetLastUpdateInstalledAt(); at != nil {
			line("privacy.updates_last", "date", notify.FormatTime(at.AsTime(), loc))
		}
		line("privacy.updates_reboot", "answer", answer(p.RebootRequired))
		line("privacy.updates_auto", "answer", answer(p.AutomaticUpdates))
	}

	if fw := f.GetFirewall(); fw != nil {
		line("privacy.fw_title")
		line("privacy.fw_state", "answer", answer(fw.Enabled))
		var accepted bool
		for _, pr := range fw.GetProfiles() {
			accepted = accepted || len(pr.GetAccepted()) > 0 || pr.GetAcceptedOmitted() > 0
		}
		if accepted {
			line("privacy.fw_rules")
		}
		if len(fw.GetReachable()) > 0 {
			var svcs []string
			seen := map[string]bool{}
			for _, s := range fw.GetReachable() {
				svc := s.GetProtocol() + " " + strconv.Itoa(int(s.GetPort()))
				if !seen[svc] {
					seen[svc] = true
					svcs = append(svcs, svc)
				}
			}
			line("privacy.fw_services", "services", strings.Join(svcs, ", "))
		}
		if fw.AllowedApps != nil {
			line("privacy.fw_apps", "count", strconv.Itoa(int(fw.GetAllowedApps())))
		}
	}
}
