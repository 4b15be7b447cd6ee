package patch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// securityUpdatesCategory is the Windows Update category ID of "Security
// Updates". Category names are translated; the ID is not.
const securityUpdatesCategory = "0FA1201D-4330-4FA8-8AE9-B877473B6441"

// windowsUpdateScript asks the Windows Update Agent (COM
// Microsoft.Update.Session) for the software updates not installed and not
// hidden, marks an update as security when it is in the Security Updates
// category or has an MSRC severity, and finds the newest successful install
// in the update history. It prints compact JSON; a failed search or history
// query is reported in SearchError / HistoryError, not thrown. One line,
// no double quotes, so the Windows command line passes it unchanged.
const windowsUpdateScript = `$ErrorActionPreference = 'Stop'; $o = [ordered]@{}; ` +
	`$s = New-Object -ComObject Microsoft.Update.Session; ` +
	`try { $r = $s.CreateUpdateSearcher().Search('IsInstalled=0 and IsHidden=0 and Type=''Software'''); ` +
	`$o.ResultCode = [int]$r.ResultCode; ` +
	`$o.Updates = @(foreach ($x in $r.Updates) { [ordered]@{Title = [string]$x.Title; ` +
	`Security = ((@($x.Categories | Where-Object { $_.CategoryID -eq '` + securityUpdatesCategory + `' }).Count -gt 0) -or [bool]$x.MsrcSeverity); ` +
	`Reboot = [bool]$x.RebootRequired} }) } catch { $o.SearchError = [string]$_.Exception.Message }; ` +
	`try { $h = $s.CreateUpdateSearcher(); $n = $h.GetTotalHistoryCount(); $last = $null; ` +
	`if ($n -gt 0) { foreach ($e in $h.QueryHistory(0, [Math]::Min($n, 500))) { ` +
	`if ($e.Operation -eq 1 -and ($e.ResultCode -eq 2 -or $e.ResultCode -eq 3) -and ($last -eq $null -or $e.Date -gt $last)) { $last = $e.Date } } }; ` +
	`if ($last -ne $null) { $o.LastInstall = $last.ToString('s', [Globalization.CultureInfo]::InvariantCulture) } } ` +
	`catch { $o.HistoryError = [string]$_.Exception.Message }; ` +
	`ConvertTo-Json -InputObject $o -Compress -Depth 4`

// windowsUpdateArgs is the PowerShell argv for windowsUpdateScript.
var windowsUpdateArgs = []string{"-NoProfile", "-NonInteractive", "-Command", windowsUpdateScript}

// Registry keys that exist while Windows waits for a restart to finish
// installing updates.
var rebootKeys = []string{
	`SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`,
	`SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending`,
}

// auPolicyKey holds the Group Policy for automatic updates.
const auPolicyKey = `SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU`

const (
	windowsCIMV2   = `ROOT\CIMV2`
	wuauservQuery  = `SELECT Name, State, StartMode FROM Win32_Service WHERE Name='wuauserv'`
	hotfixQuery    = `SELECT HotFixID, InstalledOn FROM Win32_QuickFixEngineering`
	windowsManager = "windows-update"
)

// collectWindows gathers Windows Update facts.
func collectWindows(ctx context.Context, src check.Source, _ *wardv1.OSFacts) *wardv1.PatchFacts {
	f := &wardv1.PatchFacts{Manager: windowsManager}
	var problems check.Problems

	wu, err := windowsUpdate(ctx, src)
	if err != nil {
		problems.Add("pending updates are unknown: "+err.Error(), texts.New("reason.patch_pending_unknown"), check.ErrText("", err))
	} else {
		if wu.searchErr != "" {
			problems.Add("pending updates are unknown: the Windows Update search failed (it may need the network): "+wu.searchErr,
				texts.New("reason.patch_search_failed", "detail", wu.searchErr))
		} else {
			n, sec := int32(len(wu.pending)), int32(0)
			for _, u := range wu.pending {
				if u.Security {
					sec++
				}
			}
			f.PendingUpdates, f.PendingSecurityUpdates, f.Pending = &n, &sec, wu.pending
		}
		if wu.lastInstall != nil {
			f.LastUpdateInstalledAt = timestamppb.New(*wu.lastInstall)
		}
	}
	if f.LastUpdateInstalledAt == nil {
		// Fallback: the newest hotfix install date WMI reports unambiguously.
		if rows, err := src.WMI(ctx, windowsCIMV2, hotfixQuery); err == nil {
			if t := newestHotfix(rows); t != nil {
				f.LastUpdateInstalledAt = timestamppb.New(*t)
			}
		}
		if f.LastUpdateInstalledAt == nil {
			problems.Add("the last update install time is unknown", texts.New("reason.patch_no_install_date"))
		}
	}

	if r, why := rebootRequired(ctx, src); r != nil {
		f.RebootRequired = r
	} else {
		problems.Add(why, texts.New("reason.patch_reboot_unknown"), texts.New(check.IDDetail, "detail", why))
	}
	if a, why := automaticUpdates(ctx, src); a != nil {
		f.AutomaticUpdates = a
	} else {
		problems.Add(why, texts.New("reason.patch_auto_unknown"), texts.New(check.IDDetail, "detail", why))
	}

	switch {
	case problems.Len() == 0:
		f.Collection = check.OK()
	case f.PendingSecurityUpdates == nil && f.RebootRequired == nil && f.AutomaticUpdates == nil && f.LastUpdateInstalledAt == nil:
		f.Collection = check.FailedText(problems.Text, "%s", problems.String())
	default:
		f.Collection = check.PartialText(problems.Text, "%s", problems.String())
	}
	return f
}

// wuResult is windowsUpdateScript's output, parsed.
type wuResult struct {
	pending     []*wardv1.PendingUpdate
	searchErr   string
	lastInstall *time.Time
}

func windowsUpdate(ctx context.Context, src check.Source) (*wuResult, error) {
	out, err := check.Output(ctx, src, "powershell", windowsUpdateArgs...)
	if err != nil {
		return nil, err
	}
	return parseWindowsUpdate(out)
}

type wuUpdate struct {
	Title    string `json:"Title"`
	Security *bool  `json:"Security"`
	Reboot   bool   `json:"Reboot"`
}

type wuOutput struct {
	ResultCode   *int            `json:"ResultCode"`
	Updates      json.RawMessage `json:"Updates"`
	SearchError  string          `json:"SearchError"`
	LastInstall  string          `json:"LastInstall"`
	HistoryError string          `json:"HistoryError"`
}

// parseWindowsUpdate parses windowsUpdateScript's JSON. Pending updates are
// known only when the search succeeded (ResultCode 2, or 3: succeeded with
// errors) and the list parses; otherwise searchErr says why.
func parseWindowsUpdate(data []byte) (*wuResult, error) {
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if len(data) == 0 {
		return nil, errors.New("PowerShell printed nothing")
	}
	var out wuOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("parse PowerShell output: %w", err)
	}
	r := &wuResult{searchErr: strings.TrimSpace(out.SearchError)}
	if r.searchErr == "" {
		switch {
		case out.ResultCode == nil:
			r.searchErr = "no search result"
		case *out.ResultCode != 2 && *out.ResultCode != 3:
			r.searchErr = fmt.Sprintf("search result code %d", *out.ResultCode)
		default:
			updates, err := parseUpdates(out.Updates)
			if err != nil {
				r.searchErr = err.Error()
			}
			for _, u := range updates {
				if u.Security == nil {
					r.searchErr = "an update has no security flag"
					break
				}
				r.pending = append(r.pending, &wardv1.PendingUpdate{Name: u.Title, Security: *u.Security, RestartRequired: u.Reboot})
			}
			if r.searchErr != "" {
				r.pending = nil
			}
		}
	}
	if s := strings.TrimSpace(out.LastInstall); s != "" {
		if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
			// The Windows Update Agent keeps history dates in UTC.
			r.lastInstall = &t
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			t = t.UTC()
			r.lastInstall = &t
		}
	}
	return r, nil
}

// parseUpdates reads Updates: a list, a single object, null or [] for
// none, or Windows PowerShell's wrapped-array form {"value": [...]}.
func parseUpdates(raw json.RawMessage) ([]wuUpdate, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var list []wuUpdate
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		Value *[]wuUpdate `json:"value"`
	}
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Value != nil {
		return *wrapped.Value, nil
	}
	var one wuUpdate
	if err := json.Unmarshal(raw, &one); err == nil && one.Title != "" {
		return []wuUpdate{one}, nil
	}
	return nil, errors.New("the update list does not parse")
}

// slashDate is Win32_QuickFixEngineering.InstalledOn in a month/day or
// day/month order that depends on the locale.
var slashDate = regexp.MustCompile(`^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$`)

// parseHotfixDate parses InstalledOn only where the date is unambiguous:
// ISO 8601 (yyyy-mm-dd), yyyymmdd, or a slash date whose day is above 12.
func parseHotfixDate(s string) (time.Time, bool) {
	t, ok := parseHotfixDateForm(strings.TrimSpace(s))
	if !ok || t.Year() < 1990 || t.Year() > 2200 {
		// Not a plausible install date.
		return time.Time{}, false
	}
	return t, true
}

func parseHotfixDateForm(s string) (time.Time, bool) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true
	}
	if len(s) == 8 {
		if t, err := time.Parse("20060102", s); err == nil {
			return t, true
		}
	}
	m := slashDate.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	y, _ := strconv.Atoi(m[3])
	var month, day int
	switch {
	case a > 12 && b <= 12:
		day, month = a, b
	case b > 12 && a <= 12:
		month, day = a, b
	default:
		return time.Time{}, false // 9/10/2024: September or October?
	}
	t := time.Date(y, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day || int(t.Month()) != month {
		return time.Time{}, false
	}
	return t, true
}

func newestHotfix(rows []map[string]any) *time.Time {
	var newest *time.Time
	for _, row := range rows {
		s, ok := check.RowString(row, "InstalledOn")
		if !ok {
			continue
		}
		if t, ok := parseHotfixDate(s); ok && (newest == nil || t.After(*newest)) {
			newest = &t
		}
	}
	return newest
}

// rebootRequired is true when a reboot-pending key exists, false when
// neither does, unknown (nil, with the reason) when a key cannot be read.
func rebootRequired(ctx context.Context, src check.Source) (*bool, string) {
	unreadable := ""
	for _, key := range rebootKeys {
		_, err := src.Registry(ctx, key, "")
		switch {
		case err == nil:
			t := true
			return &t, ""
		case !errors.Is(err, fs.ErrNotExist):
			unreadable = fmt.Sprintf("whether a reboot is required is unknown: %v", err)
		}
	}
	if unreadable != "" {
		return nil, unreadable
	}
	f := false
	return &f, ""
}

// automaticUpdates is false when Group Policy turns automatic updates off
// (NoAutoUpdate=1, or AUOptions 1 "never check" / 2 "notify only") or the
// Windows Update service is disabled. Otherwise it is true: Windows
// downloads and installs updates automatically by default.
func automaticUpdates(ctx context.Context, src check.Source) (*bool, string) {
	off, on := false, true
	for _, name := range []string{"NoAutoUpdate", "AUOptions"} {
		v, err := src.Registry(ctx, auPolicyKey, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Sprintf("whether updates are automatic is unknown: %v", err)
		case v.Integer == nil:
			return nil, fmt.Sprintf("whether updates are automatic is unknown: %s\\%s is not a number", auPolicyKey, name)
		}
		if (name == "NoAutoUpdate" && *v.Integer == 1) || (name == "AUOptions" && (*v.Integer == 1 || *v.Integer == 2)) {
			return &off, ""
		}
	}
	rows, err := src.WMI(ctx, windowsCIMV2, wuauservQuery)
	if err != nil {
		return nil, fmt.Sprintf("whether updates are automatic is unknown: the Windows Update service could not be read: %v", err)
	}
	if len(rows) != 1 {
		return nil, fmt.Sprintf("whether updates are automatic is unknown: WMI returned %d rows for the Windows Update service", len(rows))
	}
	mode, ok := check.RowString(rows[0], "StartMode")
	if !ok {
		return nil, "whether updates are automatic is unknown: the Windows Update service has no start mode"
	}
	if strings.EqualFold(mode, "Disabled") {
		return &off, ""
	}
	return &on, ""
}
