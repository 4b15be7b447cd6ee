package policies

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/parser"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/policies/texts"
)

// The release feed functions (docs/policies.md, "Release feed functions";
// docs/feed.md, "Policy functions"). A rule writes os_supported(),
// os_supported(days), missed_security_releases(days),
// missed_security_releases(days, exploited_days), feed_age(),
// describe_os_support() and describe_missed(list). Each is a macro that
// expands to an internal function taking the hidden variable varFeed (the
// evaluation's feed), os and now, so the CEL environment is built once and
// the feed is an input of each evaluation like the facts. The internal
// names start with "@", which no expression can write.

// varFeed is the hidden variable holding the evaluation's feed (a feedVal).
const varFeed = "@feed"

// Internal functions the macros expand to.
const (
	fnOSSupported     = "@os_supported"
	fnMissed          = "@missed_security_releases"
	fnFeedAge         = "@feed_age"
	fnDescribeSupport = "@describe_os_support"
	fnDescribeMissed  = "describe_missed"
)

// feedType is the CEL type of the hidden feed variable.
var feedType = types.NewOpaqueType("ward.Feed")

// feedVal is the feed one evaluation judges by, as a CEL value. ahead is
// set by a feed function that finds the device newer than the feed; the
// evaluation resets it before each rule and reads it after.
type feedVal struct {
	in    *FeedInput
	ahead bool
}

func (f *feedVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("the release feed cannot be converted")
}
func (f *feedVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return feedType
	}
	return types.NewErr("the release feed cannot be converted to %s", t.TypeName())
}
func (f *feedVal) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(f)) }
func (f *feedVal) Type() ref.Type              { return feedType }
func (f *feedVal) Value() any                  { return f.in }

// serial is the serial of the feed given, 0 when none.
func (f *feedVal) serial() uint64 {
	if f == nil || f.in == nil || f.in.Feed == nil {
		return 0
	}
	return f.in.Feed.Serial
}

// usable returns the feed to judge by at now, or why there is none: no
// feed (its Why, else feed.none), or an expired one.
func (f *feedVal) usable(now time.Time) (*feed.Feed, []texts.Text) {
	if f == nil || f.in == nil || f.in.Feed == nil {
		if f != nil && f.in != nil && len(f.in.Why) > 0 {
			return nil, f.in.Why
		}
		return nil, one("feed.none")
	}
	fd := f.in.Feed
	if !now.Before(fd.ExpiresAt) {
		return nil, one("feed.expired", "serial", strconv.FormatUint(fd.Serial, 10),
			"expired_at", fd.ExpiresAt.UTC().Format(time.DateOnly))
	}
	return fd, nil
}

// feedMacros are the public names, expanded at parse time.
func feedMacros() []cel.EnvOption {
	expand := func(fn string, withFacts bool) parser.MacroExpander {
		return func(eh parser.ExprHelper, _ celast.Expr, args []celast.Expr) (celast.Expr, *common.Error) {
			all := []celast.Expr{eh.NewIdent(varFeed)}
			if withFacts {
				all = append(all, eh.NewIdent(varOS))
			}
			all = append(all, eh.NewIdent(varNow))
			return eh.NewCall(fn, append(all, args...)...), nil
		}
	}
	return []cel.EnvOption{cel.Macros(
		cel.GlobalMacro("os_supported", 0, expand(fnOSSupported, true)),
		cel.GlobalMacro("os_supported", 1, expand(fnOSSupported, true)),
		cel.GlobalMacro("missed_security_releases", 1, expand(fnMissed, true)),
		cel.GlobalMacro("missed_security_releases", 2, expand(fnMissed, true)),
		cel.GlobalMacro("feed_age", 0, expand(fnFeedAge, false)),
		cel.GlobalMacro("describe_os_support", 0, expand(fnDescribeSupport, true)),
	)}
}

// feedFunctions declares the internal functions and describe_missed.
func feedFunctions() []cel.EnvOption {
	factMap := cel.MapType(cel.StringType, cel.DynType)
	base := []*cel.Type{feedType, factMap, cel.TimestampType}
	releaseList := cel.ListType(cel.MapType(cel.StringType, cel.DynType))
	return []cel.EnvOption{
		cel.Variable(varFeed, feedType),
		cel.Function(fnOSSupported,
			cel.Overload("feed_os_supported", base, cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return osSupported(args, 0) })),
			cel.Overload("feed_os_supported_int", append(slices.Clip(base), cel.IntType), cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val {
					days, ok := args[3].(types.Int)
					if !ok || days < 0 || days > 3650 {
						return types.NewErr("os_supported needs a number of days from 0 to 3650")
					}
					return osSupported(args, int64(days))
				}))),
		cel.Function(fnMissed,
			cel.Overload("feed_missed_int", append(slices.Clip(base), cel.IntType), releaseList,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return missedReleases(args, args[3], args[3]) })),
			cel.Overload("feed_missed_int_int", append(slices.Clip(base), cel.IntType, cel.IntType), releaseList,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return missedReleases(args, args[3], args[4]) }))),
		cel.Function(fnFeedAge,
			cel.Overload("feed_age", []*cel.Type{feedType, cel.TimestampType}, cel.DurationType,
				cel.BinaryBinding(func(fv, nowv ref.Val) ref.Val {
					f, _ := fv.(*feedVal)
					now, ok := nowv.(types.Timestamp)
					if !ok {
						return types.NewErr("feed_age needs the time")
					}
					fd, why := f.usable(now.Time)
					if why != nil {
						return types.WrapErr(textError{why})
					}
					return types.Duration{Duration: now.Time.Sub(fd.GeneratedAt)}
				}))),
		cel.Function(fnDescribeSupport,
			cel.Overload("feed_describe_os_support", base, cel.ListType(messageType),
				cel.FunctionBinding(describeSupport))),
		cel.Function(fnDescribeMissed,
			cel.Overload("describe_missed_list", []*cel.Type{cel.ListType(cel.DynType)}, cel.ListType(messageType),
				cel.UnaryBinding(describeMissed))),
	}
}

// placed is a device placed in the feed: its line (nil when ahead).
type placed struct {
	feed   *feed.Feed
	fv     *feedVal
	os     map[string]any
	now    time.Time
	line   *feed.Line
	ahead  bool
	system string
}

// place finds the device's line from the os facts; why is set when the
// feed cannot be used or cannot place the device.
func place(args []ref.Val) (*placed, []texts.Text) {
	fv, _ := args[0].(*feedVal)
	os, ok := nativeMap(args[1])
	now, tok := args[2].(types.Timestamp)
	if !ok || !tok {
		return nil, one("engine.no_expression")
	}
	fd, why := fv.usable(now.Time)
	if why != nil {
		return nil, why
	}
	str := func(k string) string { s, _ := os[k].(string); return s }
	dev := feed.Device{Platform: str("platform"), OSID: str("id"), Version: str("version"),
		Build: str("build"), Edition: str("edition")}
	m, err := fd.LineOf(dev)
	if err != nil {
		return nil, one("feed.no_line", "detail", err.Error())
	}
	p := &placed{feed: fd, fv: fv, os: os, now: now.Time, line: m.Line, ahead: m.Ahead, system: systemName(dev, m.Line)}
	if m.Ahead && fv != nil {
		fv.ahead = true
	}
	return p, nil
}

// systemName names the device's system in messages: "macOS 15.7.1",
// "Windows 11 24H2 (26100.2605)", "ubuntu 22.04".
func systemName(d feed.Device, l *feed.Line) string {
	switch d.Platform {
	case "darwin":
		return "macOS " + d.Version
	case "windows":
		if l != nil {
			return fmt.Sprintf("Windows %s (%s)", l.Version, d.Build)
		}
		return "Windows " + d.Build
	}
	return strings.TrimSpace(d.OSID + " " + d.Version)
}

// eolEnd is when the line's support ends: the day after its last day.
func eolEnd(d feed.Date) time.Time { return d.Time().Add(24 * time.Hour) }

// osSupported is os_supported(): the device's line is not past its end of
// life (and, with days, will not be for days more). Ubuntu's eol is the end
// of standard support: past it the device fails even within ESM, since no
// fact says ESM is enabled (describe_os_support names ESM).
func osSupported(args []ref.Val, days int64) ref.Val {
	p, why := place(args)
	if why != nil {
		return types.WrapErr(textError{why})
	}
	if p.ahead || p.line.EOL.IsZero() {
		// Ahead of the feed, or no end of life announced: supported for
		// as long as the feed is (an expired feed never gets here).
		return types.True
	}
	return types.Bool(p.now.Add(time.Duration(days) * 24 * time.Hour).Before(eolEnd(p.line.EOL)))
}

// release is a release version as comparable parts: the numbers and, for a
// macOS Rapid Security Response, its letter ("13.4.1 (a)").
type release struct {
	nums []uint64
	rsr  string
}

func parseRelease(s string) (release, error) {
	s = strings.TrimSpace(s)
	v, extra, _ := strings.Cut(s, " ")
	var r release
	for p := range strings.SplitSeq(v, ".") {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return release{}, fmt.Errorf("%q is not a version", s)
		}
		r.nums = append(r.nums, n)
	}
	extra = strings.TrimSpace(extra)
	if extra != "" {
		letter, ok := strings.CutPrefix(extra, "(")
		letter, ok2 := strings.CutSuffix(letter, ")")
		if !ok || !ok2 || letter == "" || strings.ContainsAny(letter, " ()") {
			return release{}, fmt.Errorf("%q is not a version", s)
		}
		r.rsr = letter
	}
	return r, nil
}

func (a release) cmp(b release) int {
	if c := cmpNums(a.nums, b.nums); c != 0 {
		return c
	}
	return strings.Compare(a.rsr, b.rsr)
}

func cmpNums(a, b []uint64) int {
	for i := range max(len(a), len(b)) {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

// installedCmp compares what the device has installed with release r of
// its line: negative when r is newer (the device lacks it).
func (p *placed) installedCmp() (func(feed.Release) int, []texts.Text) {
	str := func(k string) string { s, _ := p.os[k].(string); return s }
	switch p.line.Platform {
	case feed.MacOS:
		v := str("version")
		// display_version carries a Rapid Security Response: "13.3.1 (a)".
		if dv := str("display_version"); strings.HasPrefix(dv, v+" ") {
			v = dv
		}
		dev, err := parseRelease(v)
		if err != nil {
			return nil, one("feed.no_line", "detail", err.Error())
		}
		return func(r feed.Release) int {
			rv, err := parseRelease(r.Version)
			if err != nil {
				return -1 // Validate keeps this out of a feed
			}
			return dev.cmp(rv)
		}, nil
	case feed.Windows:
		_, ubrText, _ := strings.Cut(str("build"), ".")
		ubr, err := strconv.ParseUint(ubrText, 10, 32)
		if err != nil {
			return nil, one("feed.no_line", "detail", fmt.Sprintf("the Windows update build revision is not known (build %q)", str("build")))
		}
		return func(r feed.Release) int { return cmpNums([]uint64{ubr}, []uint64{uint64(r.UBR)}) }, nil
	case feed.RHEL:
		dev, err := parseRelease(str("version"))
		if err != nil {
			return nil, one("feed.no_line", "detail", err.Error())
		}
		return func(r feed.Release) int {
			rv, err := parseRelease(r.Version)
			if err != nil {
				return -1
			}
			return dev.cmp(rv)
		}, nil
	}
	return nil, one("feed.no_releases", "system", p.system)
}

// missedReleases is missed_security_releases(days, exploited_days): the
// releases of the device's line it has not installed that came out more
// than days (exploited_days for one fixing an exploited flaw) before now,
// oldest first, as maps {id, released, exploited, days}.
func missedReleases(args []ref.Val, daysV, exploitedV ref.Val) ref.Val {
	days, ok := daysV.(types.Int)
	edays, eok := exploitedV.(types.Int)
	if !ok || !eok || days < 0 || edays < 0 || days > 3650 || edays > 3650 {
		return types.NewErr("missed_security_releases needs numbers of days from 0 to 3650")
	}
	list, why := missed(args, int64(days), int64(edays))
	if why != nil {
		return types.WrapErr(textError{why})
	}
	vals := make([]ref.Val, len(list))
	for i, m := range list {
		vals[i] = types.DefaultTypeAdapter.NativeToValue(m)
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

func missed(args []ref.Val, days, edays int64) ([]map[string]any, []texts.Text) {
	p, why := place(args)
	if why != nil {
		return nil, why
	}
	if p.ahead {
		return nil, nil
	}
	if len(p.line.Releases) == 0 {
		return nil, one("feed.no_releases", "system", p.system)
	}
	cmp, why := p.installedCmp()
	if why != nil {
		return nil, why
	}
	rels := p.line.Releases
	if cmp(rels[len(rels)-1]) > 0 {
		p.fv.ahead = true // newer than the line's newest release
	}
	out := []map[string]any{}
	for _, r := range rels {
		if cmp(r) >= 0 {
			continue
		}
		wait := days
		if r.Exploited {
			wait = edays
		}
		age := p.now.Sub(r.Released.Time())
		if age <= time.Duration(wait)*24*time.Hour {
			continue
		}
		out = append(out, map[string]any{
			"id":        r.ID(),
			"released":  r.Released.Time(),
			"exploited": r.Exploited,
			"days":      int64(age / (24 * time.Hour)),
		})
	}
	return out, nil
}

// describeSupport is describe_os_support(): the device's system and its
// support as the feed says, and which feed.
func describeSupport(args ...ref.Val) ref.Val {
	p, why := place(args)
	if why != nil {
		return types.WrapErr(textError{why})
	}
	var parts []texts.Text
	l := p.line
	switch {
	case p.ahead:
		parts = one("feed.ahead", "system", p.system)
	case l.EOL.IsZero():
		parts = one("feed.supported_no_eol", "system", p.system)
	case !p.now.Before(eolEnd(l.EOL)) && !l.ESMEOL.IsZero() && p.now.Before(eolEnd(l.ESMEOL)):
		parts = one("feed.esm_only", "system", p.system, "eol", l.EOL.String(), "esm_eol", l.ESMEOL.String())
	case !p.now.Before(eolEnd(l.EOL)):
		parts = one("feed.support_ended", "system", p.system, "eol", l.EOL.String())
	default:
		parts = one("feed.supported_until", "system", p.system, "eol", l.EOL.String())
	}
	parts = append(parts, texts.New("feed.about", "serial", strconv.FormatUint(p.feed.Serial, 10),
		"days", strconv.FormatInt(max(0, int64(p.now.Sub(p.feed.GeneratedAt)/(24*time.Hour))), 10)))
	return messageList(parts)
}

// describeMissed is describe_missed(missed_security_releases(...)): which
// releases are missing and which of them fix an exploited flaw.
func describeMissed(v ref.Val) ref.Val {
	l, ok := v.(traits.Lister)
	if !ok {
		return types.NewErr("describe_missed needs the list missed_security_releases gives")
	}
	var ids, exploited []string
	for it := l.Iterator(); it.HasNext() == types.True; {
		m, ok := nativeMap(it.Next())
		if !ok {
			return types.NewErr("describe_missed needs the list missed_security_releases gives")
		}
		id, _ := m["id"].(string)
		ids = append(ids, id)
		if e, _ := m["exploited"].(bool); e {
			exploited = append(exploited, id)
		}
	}
	if len(ids) == 0 {
		return messageList(one("feed.none_missing"))
	}
	parts := one("feed.missing", "releases", strings.Join(ids, ", "))
	if len(exploited) > 0 {
		parts = append(parts, texts.New("feed.missing_exploited", "releases", strings.Join(exploited, ", ")))
	}
	return messageList(parts)
}

// readsFeed reports whether a parsed expression uses the feed.
func readsFeed(parsed *cel.Ast) bool {
	for _, e := range celast.MatchDescendants(celast.NavigateAST(parsed.NativeRep()), celast.KindMatcher(celast.IdentKind)) {
		if e.AsIdent() == varFeed {
			return true
		}
	}
	return false
}
