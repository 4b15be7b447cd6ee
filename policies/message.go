package policies

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/wardhq/ward/policies/texts"
)

// Catalogue messages in expressions. msg(id) and msg(id, {"name": value})
// give a message of the shared catalogue (package policies/texts), which
// the agent renders in the reader's language; describe_volumes and
// describe_services give lists of them. An observed expression gives a
// text (a custom policy's own words, English only), a message or a list of
// messages (lists concatenate with +); unknown() takes a text, a message or
// a list of messages.

const fnMsg = "msg"

// messageType is the CEL type of a catalogue message.
var messageType = types.NewOpaqueType("ward.Message")

// message is a catalogue message as a CEL value.
type message struct{ texts.Text }

func (m message) ConvertToNative(t reflect.Type) (any, error) {
	if t == reflect.TypeFor[texts.Text]() {
		return m.Text, nil
	}
	return nil, fmt.Errorf("a message cannot be converted to %v", t)
}

func (m message) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case messageType:
		return m
	case types.TypeType:
		return messageType
	case types.StringType:
		return types.String(m.String(texts.Default))
	}
	return types.NewErr("a message cannot be converted to %s", t.TypeName())
}

func (m message) Equal(other ref.Val) ref.Val {
	o, ok := other.(message)
	return types.Bool(ok && o.ID == m.ID && maps.Equal(o.Params, m.Params))
}

func (m message) Type() ref.Type { return messageType }
func (m message) Value() any     { return m.Text }

// messageList makes a CEL list of messages.
func messageList(ts []texts.Text) ref.Val {
	vals := make([]ref.Val, len(ts))
	for i, t := range ts {
		vals[i] = message{t}
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

// textError is an error that says why in catalogue messages: unknown()
// with a message, and the engine's own functions. Its Error is the English
// rendering.
type textError struct{ parts []texts.Text }

func (e textError) Error() string { return texts.Render(texts.Default, e.parts) }

// messageFunctions are msg and the message overloads of unknown.
func messageFunctions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function(fnMsg,
			cel.Overload("msg_string", []*cel.Type{cel.StringType}, messageType,
				cel.UnaryBinding(func(id ref.Val) ref.Val { return newMessage(id, nil) })),
			cel.Overload("msg_string_map", []*cel.Type{cel.StringType, cel.MapType(cel.StringType, cel.DynType)}, messageType,
				cel.BinaryBinding(newMessage))),
		cel.Function("unknown",
			cel.Overload("unknown_string", []*cel.Type{cel.StringType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok || strings.TrimSpace(string(s)) == "" {
						return types.NewErr("unknown needs a reason")
					}
					return types.WrapErr(textError{[]texts.Text{literal(string(s))}})
				})),
			cel.Overload("unknown_message", []*cel.Type{messageType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					m, ok := v.(message)
					if !ok {
						return types.NewErr("unknown needs a reason")
					}
					return types.WrapErr(textError{[]texts.Text{m.Text}})
				})),
			cel.Overload("unknown_list_message", []*cel.Type{cel.ListType(messageType)}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					parts, ok := messageParts(v)
					if !ok || len(parts) == 0 {
						return types.NewErr("unknown needs a reason")
					}
					return types.WrapErr(textError{parts})
				}))),
	}
}

// newMessage is msg(id, params). The id must be in the catalogue (a
// policy naming another is refused at load); parameters are data: texts,
// numbers, or timestamps (written as a UTC date, 2006-01-02).
func newMessage(id, params ref.Val) ref.Val {
	s, ok := id.(types.String)
	if !ok || !texts.Known(string(s)) {
		return types.NewErr("msg: %v is not a message of the catalogue", id)
	}
	t := texts.Text{ID: string(s)}
	if params == nil {
		return message{t}
	}
	m, ok := params.(traits.Mapper)
	if !ok {
		return types.NewErr("msg: parameters must be a map of names to values")
	}
	t.Params = map[string]string{}
	for it := m.Iterator(); it.HasNext() == types.True; {
		k := it.Next()
		name, ok := k.(types.String)
		if !ok {
			return types.NewErr("msg: parameter names must be texts")
		}
		v, found := m.Find(k)
		if !found {
			continue
		}
		if types.IsError(v) {
			return v
		}
		str, err := paramText(v)
		if err != nil {
			return types.NewErr("msg %s: parameter %s: %v", s, name, err)
		}
		t.Params[string(name)] = str
	}
	return message{t}
}

// paramText writes a parameter value as data.
func paramText(v ref.Val) (string, error) {
	switch x := v.(type) {
	case types.String:
		return string(x), nil
	case types.Int:
		return strconv.FormatInt(int64(x), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case types.Double:
		return strconv.FormatFloat(float64(x), 'f', -1, 64), nil
	case types.Timestamp:
		return x.UTC().Format(time.DateOnly), nil
	}
	return "", fmt.Errorf("a %s is not a parameter (give a text, a number or a timestamp)", v.Type().TypeName())
}

// messageParts returns the messages of a message or a list of messages.
func messageParts(v ref.Val) ([]texts.Text, bool) {
	if m, ok := v.(message); ok {
		return []texts.Text{m.Text}, true
	}
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, false
	}
	var out []texts.Text
	for it := l.Iterator(); it.HasNext() == types.True; {
		m, ok := it.Next().(message)
		if !ok {
			return nil, false
		}
		out = append(out, m.Text)
	}
	return out, true
}

// observedParts turns an observed expression's value into messages: a
// message or a list of them as they are, a text (a custom policy's own
// words) as engine.literal. ok is false for anything else or nothing.
func observedParts(v ref.Val) ([]texts.Text, bool) {
	if s, isText := v.(types.String); isText {
		if strings.TrimSpace(string(s)) == "" {
			return nil, false
		}
		return []texts.Text{literal(string(s))}, true
	}
	parts, ok := messageParts(v)
	return parts, ok && len(parts) > 0
}

// literal is a policy's or a program's own words, shown as they are.
func literal(s string) texts.Text { return texts.New(idLiteral, "text", s) }

// detail is a program's own English text, introduced as a technical detail
// in other languages.
func detail(s string) texts.Text { return texts.New(idDetail, "detail", s) }

// Ids of the engine's messages that carry words not in the catalogue.
const (
	idLiteral = "engine.literal"
	idDetail  = "engine.detail"
)

// reasonParts says why an evaluation gave no value, in messages.
func reasonParts(err error) []texts.Text {
	var te textError
	if errors.As(err, &te) {
		return te.parts
	}
	return nil
}

var placeholderPattern = regexp.MustCompile(`\{([a-z_]+)\}`)

// msgParams lists the parameters a message's English text names.
func msgParams(id string) []string {
	s, _ := texts.Message(texts.Default, id)
	var out []string
	for _, m := range placeholderPattern.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkMessages checks, at load, every msg() of a parsed expression: its
// id is a literal text naming a message of the catalogue and, when its
// parameters are a literal map, they are exactly the message's.
func (d *decoder) checkMessages(parsed *cel.Ast, what string, line, col int) bool {
	native := parsed.NativeRep()
	info := native.SourceInfo()
	ok := true
	at := func(id int64, format string, args ...any) {
		d.atExpression(line, col, info.GetStartLocation(id), what+": "+fmt.Sprintf(format, args...))
		ok = false
	}
	for _, e := range celast.MatchDescendants(celast.NavigateAST(native), celast.KindMatcher(celast.CallKind)) {
		call := e.AsCall()
		if call.FunctionName() != fnMsg || call.IsMemberFunction() || len(call.Args()) == 0 {
			continue
		}
		args := call.Args()
		lit, isLit := args[0].AsLiteral().(types.String)
		if args[0].Kind() != celast.LiteralKind || !isLit {
			at(args[0].ID(), "msg needs the message id as a literal text such as \"disk.volume_not_encrypted\"")
			continue
		}
		id := string(lit)
		if !texts.Known(id) {
			at(args[0].ID(), "msg: %q is not a message of the catalogue (policies/texts)", id)
			continue
		}
		want := msgParams(id)
		if len(args) < 2 {
			if len(want) > 0 {
				at(e.ID(), "msg %q needs its parameters: %s", id, strings.Join(want, ", "))
			}
			continue
		}
		if args[1].Kind() != celast.MapKind {
			continue
		}
		var got []string
		for _, entry := range args[1].AsMap().Entries() {
			k := entry.AsMapEntry().Key()
			s, isText := k.AsLiteral().(types.String)
			if k.Kind() != celast.LiteralKind || !isText {
				got = nil
				break
			}
			got = append(got, string(s))
		}
		slices.Sort(got)
		if got != nil && !slices.Equal(got, want) {
			at(args[1].ID(), "msg %q takes the parameters %s, not %s", id, wordList(want), wordList(got))
		}
	}
	return ok
}

func wordList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
