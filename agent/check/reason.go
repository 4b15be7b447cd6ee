package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// The reason messages collectors use most (policies/texts,
// catalogue_reasons.go). IDAdmin is the typed "needs administrator
// rights" signal: a reason whose texts hold it was refused by the
// operating system, which `ward-agent check` and `status` turn into "run it
// as an administrator, or let the service do it" instead of fix advice.
const (
	IDAdmin       = "reason.needs_admin"
	IDAdminHere   = "reason.needs_admin_here"
	IDDetail      = "reason.detail_only"
	IDMissing     = "reason.missing"
	IDTimedOut    = "reason.timed_out"
	IDUnsupported = "reason.not_supported"
	IDNotRecorded = "reason.not_recorded"
	IDNotAllowed  = "reason.not_allowed"
	IDReadFailed  = "reason.read_failed"
	IDToolFailed  = "reason.tool_failed"
	IDOutputCut   = "reason.output_cut"
	IDUnreadable  = "reason.output_unreadable"
	IDAt          = "reason.at"
)

// PartialText is Partial with the reason as catalogue messages too.
func PartialText(text []texts.Text, format string, args ...any) *wardv1.Collection {
	return withText(Partial(format, args...), text)
}

// FailedText is Failed with the reason as catalogue messages too.
func FailedText(text []texts.Text, format string, args ...any) *wardv1.Collection {
	return withText(Failed(format, args...), text)
}

// UnsupportedText is Unsupported with the reason as catalogue messages too.
func UnsupportedText(text []texts.Text, format string, args ...any) *wardv1.Collection {
	return withText(Unsupported(format, args...), text)
}

func withText(c *wardv1.Collection, text []texts.Text) *wardv1.Collection {
	c.ReasonText = texts.ToProto(text)
	return c
}

// SetVolumeReason sets a volume's reason: English for the record and the
// same as catalogue messages for staff.
func SetVolumeReason(v *wardv1.Volume, english string, text ...texts.Text) {
	v.Reason = english
	v.ReasonText = texts.ToProto(text)
}

// AddVolumeReason appends to a volume's reason (English joined by "; ").
func AddVolumeReason(v *wardv1.Volume, english string, text ...texts.Text) {
	if v.Reason == "" {
		v.Reason = english
	} else if english != "" {
		v.Reason += "; " + english
	}
	v.ReasonText = append(v.ReasonText, texts.ToProto(text)...)
}

// ErrText says, as a catalogue message, why reading source (a tool's
// name, a path, "the firewall rules") failed with err. It decides by the
// error's type, never by its words: fs.ErrPermission is "needs
// administrator rights", fs.ErrNotExist "missing", a deadline "timed out",
// ErrUnsupported, ErrNotRecorded and ErrNotAllowed their own messages, a
// *ToolError the tool's own words; anything else carries err's text as the
// detail. With no source (the error may come from one of several reads),
// only a refusal is told apart from the rest, which is the error's text.
func ErrText(source string, err error) texts.Text {
	var te *ToolError
	if source == "" {
		if errors.Is(err, fs.ErrPermission) {
			return texts.New(IDAdminHere)
		}
		return texts.New(IDDetail, "detail", err.Error())
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return texts.New(IDAdmin, "source", source)
	case errors.Is(err, context.DeadlineExceeded):
		return texts.New(IDTimedOut, "source", source)
	case errors.Is(err, ErrNotRecorded):
		return texts.New(IDNotRecorded, "source", source)
	case errors.Is(err, ErrNotAllowed):
		return texts.New(IDNotAllowed, "source", source)
	case errors.Is(err, ErrUnsupported):
		return texts.New(IDUnsupported, "source", source)
	case errors.Is(err, fs.ErrNotExist):
		return texts.New(IDMissing, "source", source)
	case errors.As(err, &te) && te.Truncated:
		return texts.New(IDOutputCut, "source", te.Tool)
	case errors.As(err, &te):
		return texts.New(IDToolFailed, "source", te.Tool, "detail", te.Detail)
	}
	return texts.New(IDReadFailed, "source", source, "detail", err.Error())
}

// ParseText says that source's output or content could not be understood;
// detail is the parser's own words (data, shown as it is).
func ParseText(source string, err error) texts.Text {
	return texts.New(IDUnreadable, "source", source, "detail", err.Error())
}

// At introduces the reasons about one place (a mount point, a device, a
// profile): it renders as "{place}:", and texts.Render joins what follows
// with a space.
func At(place string) texts.Text { return texts.New(IDAt, "place", place) }

// NeedsAdmin reports whether a reason's messages say the operating system
// refused Ward for lack of rights.
func NeedsAdmin(text []texts.Text) bool {
	for _, t := range text {
		if t.ID == IDAdmin || t.ID == IDAdminHere {
			return true
		}
	}
	return false
}

// ToolError is a tool that ran but did not give a usable answer: it exited
// non-zero (Detail is the first line of what it printed on stderr) or its
// output was cut at the Source's cap.
type ToolError struct {
	Tool      string
	ExitCode  int
	Detail    string
	Truncated bool
}

func (e *ToolError) Error() string {
	if e.Truncated {
		return fmt.Sprintf("%s's output was cut off", e.Tool)
	}
	return fmt.Sprintf("%s exited with status %d: %s", e.Tool, e.ExitCode, e.Detail)
}

// Problems gathers why a collection is incomplete: English for the
// record (Collection.reason) and catalogue messages for staff
// (Collection.reason_text).
type Problems struct {
	English []string
	Text    []texts.Text
}

// Add records one problem.
func (p *Problems) Add(english string, text ...texts.Text) {
	p.English = append(p.English, english)
	p.Text = append(p.Text, text...)
}

// Len is the number of problems.
func (p *Problems) Len() int { return len(p.English) }

// String is the English problems joined by "; ".
func (p *Problems) String() string { return strings.Join(p.English, "; ") }

// ReasonError is an error that carries its reason for staff as catalogue
// messages, for collectors whose helpers return errors.
type ReasonError struct {
	English string
	Text    []texts.Text
}

func (e *ReasonError) Error() string { return e.English }

// Reasoned returns an error with its English words and its messages.
func Reasoned(english string, text ...texts.Text) error {
	return &ReasonError{English: english, Text: text}
}

// TextOf returns the messages err carries (a *ReasonError in its chain),
// else ErrText(source, err).
func TextOf(source string, err error) []texts.Text {
	var re *ReasonError
	if errors.As(err, &re) {
		return re.Text
	}
	return []texts.Text{ErrText(source, err)}
}

// NoCollector says that Ward has no collector for platform (a GOOS value);
// an empty platform, when the operating system itself could not be told,
// says that instead.
func NoCollector(platform string) texts.Text {
	if platform == "" {
		return texts.New("engine.platform_unknown")
	}
	return texts.New("reason.no_collector", "platform", platform)
}
