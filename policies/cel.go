package policies

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Variables a rule can read.
const (
	varOS       = "os"
	varDisk     = "disk"
	varPatch    = "patch"
	varFirewall = "firewall"
	varNow      = "now"
)

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	factMap := cel.MapType(cel.StringType, cel.DynType)
	opts := []cel.EnvOption{
		cel.Variable(varOS, factMap),
		cel.Variable(varDisk, factMap),
		cel.Variable(varPatch, factMap),
		cel.Variable(varFirewall, factMap),
		cel.Variable(varNow, cel.TimestampType),
		ext.Strings(),
		cel.ParserExpressionSizeLimit(maxExpressionSize),
		cel.ParserRecursionLimit(100),
		cel.Function("version_at_least",
			cel.Overload("version_at_least_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(v, min ref.Val) ref.Val {
					a, aok := v.(types.String)
					b, bok := min.(types.String)
					if !aok || !bok {
						return types.NewErr("version_at_least needs two strings")
					}
					ok, err := versionAtLeast(string(a), string(b))
					if err != nil {
						return types.WrapErr(err)
					}
					return types.Bool(ok)
				}))),
		cel.Function("days",
			cel.Overload("days_duration", []*cel.Type{cel.DurationType}, cel.IntType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					d, ok := v.(types.Duration)
					if !ok {
						return types.NewErr("days needs a duration")
					}
					return types.Int(int64(d.Duration / (24 * time.Hour)))
				}))),
		cel.Function("describe_volumes",
			cel.Overload("describe_volumes_list", []*cel.Type{cel.ListType(cel.DynType)}, cel.ListType(messageType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					l, ok := v.(traits.Lister)
					if !ok {
						return types.NewErr("describe_volumes needs a list of volumes")
					}
					var vols []map[string]any
					for it := l.Iterator(); it.HasNext() == types.True; {
						m, ok := nativeMap(it.Next())
						if !ok {
							return types.NewErr("describe_volumes needs a list of volumes")
						}
						vols = append(vols, m)
					}
					return messageList(describeVolumes(vols))
				}))),
		cel.Function(fnServiceAllowed,
			cel.Overload("service_allowed_dyn_list_string", []*cel.Type{cel.DynType, cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(serviceAllowed))),
		cel.Function(fnDescribeServices,
			cel.Overload("describe_services_list", []*cel.Type{cel.ListType(cel.DynType)}, cel.ListType(messageType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					svcs, err := nativeMaps(v)
					if err != nil {
						return types.NewErr("describe_services needs a list of reachable services")
					}
					return messageList(describeServices(svcs))
				}))),
		cel.Function(fnReason,
			cel.Overload("reason_dyn", []*cel.Type{cel.DynType}, cel.ListType(messageType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					m, ok := nativeMap(v)
					if !ok {
						return types.NewErr("reason needs a collection or a volume")
					}
					why, _ := m["reason"].(string)
					parts := reasonTexts(m["reason_text"], why)
					if len(parts) == 0 {
						parts = []texts.Text{texts.New("engine.no_reason")}
					}
					return messageList(parts)
				}))),
	}
	opts = append(opts, feedMacros()...)
	opts = append(opts, feedFunctions()...)
	return cel.NewEnv(append(opts, messageFunctions()...)...)
})

// fnReason is reason(collection): why a collection (or a volume) is not
// fully known, as messages: its reason_text, else its English reason.
const fnReason = "reason"

// Functions over reachable services (firewall.reachable).
const (
	fnServiceAllowed   = "service_allowed"
	fnDescribeServices = "describe_services"
)

// serviceAllowed is service_allowed(service, allowed): whether one of the
// allowed entries ("tcp/22", "udp/5353", "tcp/8000-8100") covers the
// service's protocol and port. An entry that is not a service, or a
// service without protocol or port, is an error, never a match.
func serviceAllowed(service, allowed ref.Val) ref.Val {
	m, ok := nativeMap(service)
	if !ok {
		return types.NewErr("service_allowed needs a reachable service")
	}
	proto, port, err := serviceKey(m)
	if err != nil {
		return types.NewErr("%v", err)
	}
	l, ok := allowed.(traits.Lister)
	if !ok {
		return types.NewErr("service_allowed needs a list of services")
	}
	var specs []serviceSpec
	for it := l.Iterator(); it.HasNext() == types.True; {
		s, ok := it.Next().(types.String)
		if !ok {
			return types.NewErr("service_allowed needs a list of texts such as \"tcp/22\"")
		}
		spec, err := parseServiceSpec(string(s))
		if err != nil {
			return types.NewErr("%v", err)
		}
		specs = append(specs, spec)
	}
	for _, spec := range specs {
		if spec.allows(proto, port) {
			return types.True
		}
	}
	return types.False
}

// serviceKey gives a reachable service's protocol and port. "tcp6" and
// "udp6" are tcp and udp: the address family is a field of its own.
func serviceKey(m map[string]any) (string, uint64, error) {
	proto, _ := m["protocol"].(string)
	proto = strings.ToLower(proto)
	if p, ok := strings.CutSuffix(proto, "6"); ok && (p == "tcp" || p == "udp") {
		proto = p
	}
	if proto == "" {
		return "", 0, fmt.Errorf("a reachable service has no protocol")
	}
	port := servicePort(m)
	if port == 0 {
		return "", 0, fmt.Errorf("the reachable %s service on %q has no port", proto, m["address"])
	}
	return proto, port, nil
}

// servicePort is a service's port, 0 when unknown.
func servicePort(m map[string]any) uint64 {
	switch p := m["port"].(type) {
	case uint64:
		return p
	case int64:
		if p > 0 {
			return uint64(p)
		}
	}
	return 0
}

// nativeMaps returns the Go maps behind a CEL list of maps.
func nativeMaps(v ref.Val) ([]map[string]any, error) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("not a list")
	}
	var out []map[string]any
	for it := l.Iterator(); it.HasNext() == types.True; {
		m, ok := nativeMap(it.Next())
		if !ok {
			return nil, fmt.Errorf("not a list of maps")
		}
		out = append(out, m)
	}
	return out, nil
}

// nativeMap returns the Go map behind a CEL map value.
func nativeMap(v ref.Val) (map[string]any, bool) {
	if m, ok := v.Value().(map[string]any); ok {
		return m, true
	}
	n, err := v.ConvertToNative(reflect.TypeFor[map[string]any]())
	if err != nil {
		return nil, false
	}
	m, ok := n.(map[string]any)
	return m, ok
}

// versionAtLeast compares dotted numeric versions: missing parts count as
// zero, so "14.6.1" is at least "14". Anything but digits and dots is an
// error, never a guess.
func versionAtLeast(v, min string) (bool, error) {
	a, err := parseVersion(v)
	if err != nil {
		return false, err
	}
	b, err := parseVersion(min)
	if err != nil {
		return false, err
	}
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x > y, nil
		}
	}
	return true, nil
}

func parseVersion(s string) ([]int, error) {
	if s == "" {
		return nil, textError{[]texts.Text{texts.New("engine.version_empty")}}
	}
	parts := strings.Split(s, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 || strings.TrimFunc(p, func(r rune) bool { return r >= '0' && r <= '9' }) != "" {
			return nil, textError{[]texts.Text{texts.New("engine.version_not_numbers", "version", s)}}
		}
		out[i], _ = strconv.Atoi(p)
	}
	return out, nil
}

// activation builds the variables rules read from the facts. A family that
// was not collected is an empty map, so any read of it is a missing key.
func activation(f *wardv1.Facts, now time.Time) map[string]any {
	return map[string]any{
		varOS:       messageMap(f.GetOs()),
		varDisk:     messageMap(f.GetDiskEncryption()),
		varPatch:    messageMap(f.GetPatchLevel()),
		varFirewall: messageMap(f.GetFirewall()),
		varNow:      now,
	}
}

// messageMap turns a message into a map by proto field name. Fields with
// presence that are unset are absent, and so is an enum at its
// *_UNSPECIFIED zero value: both mean the collector could not tell.
func messageMap(m proto.Message) map[string]any {
	out := map[string]any{}
	if m == nil {
		return out
	}
	r := m.ProtoReflect()
	if !r.IsValid() {
		return out
	}
	fields := r.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.HasPresence() && !r.Has(fd) {
			continue
		}
		v := r.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			list := make([]any, 0, l.Len())
			for j := 0; j < l.Len(); j++ {
				if x, ok := fieldValue(fd, l.Get(j)); ok {
					list = append(list, x)
				}
			}
			out[string(fd.Name())] = list
		case fd.IsMap():
			mm := map[string]any{}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if x, ok := fieldValue(fd.MapValue(), mv); ok {
					mm[k.String()] = x
				}
				return true
			})
			out[string(fd.Name())] = mm
		default:
			if x, ok := fieldValue(fd, v); ok {
				out[string(fd.Name())] = x
			}
		}
	}
	return out
}

// fieldValue converts one singular value; ok is false when it is unknown.
func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, bool) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool(), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int(), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return v.Uint(), true
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float(), true
	case protoreflect.StringKind:
		return v.String(), true
	case protoreflect.BytesKind:
		return v.Bytes(), true
	case protoreflect.EnumKind:
		return enumName(fd.Enum(), v.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		msg := v.Message().Interface()
		if ts, ok := msg.(*timestamppb.Timestamp); ok {
			if ts.CheckValid() != nil {
				return nil, false
			}
			return ts.AsTime(), true
		}
		return messageMap(msg), true
	}
	return nil, false
}

// enumName gives "fully_encrypted" for CONVERSION_FULLY_ENCRYPTED: lowercase,
// without the prefix named for the enum type. The zero value named
// *_UNSPECIFIED is unknown.
func enumName(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) (any, bool) {
	vd := ed.Values().ByNumber(n)
	if vd == nil {
		return nil, false
	}
	name := string(vd.Name())
	if n == 0 && strings.HasSuffix(name, "_UNSPECIFIED") {
		return nil, false
	}
	name = strings.TrimPrefix(name, upperSnake(string(ed.Name()))+"_")
	return strings.ToLower(name), true
}

// upperSnake turns "FirewallAction" into "FIREWALL_ACTION".
func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// factPaths maps a field name to where it appears in the variables, so a
// missing key can be named: "encrypted" → "disk.volumes[].encrypted".
var factPaths = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	var walk func(prefix string, md protoreflect.MessageDescriptor, depth int)
	walk = func(prefix string, md protoreflect.MessageDescriptor, depth int) {
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			p := prefix + "." + string(fd.Name())
			if fd.IsList() {
				p += "[]"
			}
			out[string(fd.Name())] = append(out[string(fd.Name())], p)
			if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != "google.protobuf.Timestamp" && depth < 4 {
				walk(p, fd.Message(), depth+1)
			}
		}
	}
	f := (&wardv1.Facts{}).ProtoReflect().Descriptor().Fields()
	for name, v := range map[string]string{"os": varOS, "disk_encryption": varDisk, "patch_level": varPatch, "firewall": varFirewall} {
		walk(v, f.ByName(protoreflect.Name(name)).Message(), 0)
	}
	return out
})

// errorReason turns a CEL evaluation error into messages.
func errorReason(err error) []texts.Text {
	if parts := reasonParts(err); len(parts) > 0 {
		return parts
	}
	msg := err.Error()
	if key, ok := strings.CutPrefix(msg, "no such key: "); ok {
		where := factPaths()[key]
		if len(where) == 0 {
			return one("engine.fact_not_collected", "fact", key)
		}
		return one("engine.fact_not_collected_at", "fact", key, "paths", strings.Join(where, ", "))
	}
	return []texts.Text{detail(msg)}
}
