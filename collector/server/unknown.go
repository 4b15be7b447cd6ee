package server

import (
	"google.golang.org/protobuf/reflect/protoreflect"
)

// discardUnknown drops the unknown fields of m and of every message in
// it (fields, lists, map values), so that what a newer (or hostile)
// agent adds beyond this collector's schema is never hashed nor stored:
// within the report size limit one device could otherwise store
// megabytes of padding every round. It reports whether it dropped any.
func discardUnknown(m protoreflect.Message) bool {
	if m == nil || !m.IsValid() {
		return false
	}
	dropped := false
	if len(m.GetUnknown()) > 0 {
		m.SetUnknown(nil)
		dropped = true
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && isMessage(fd):
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				dropped = discardUnknown(l.Get(i).Message()) || dropped
			}
		case fd.IsMap() && isMessage(fd.MapValue()):
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				dropped = discardUnknown(mv.Message()) || dropped
				return true
			})
		case !fd.IsList() && !fd.IsMap() && isMessage(fd):
			dropped = discardUnknown(v.Message()) || dropped
		}
		return true
	})
	return dropped
}

func isMessage(fd protoreflect.FieldDescriptor) bool {
	k := fd.Kind()
	return k == protoreflect.MessageKind || k == protoreflect.GroupKind
}
