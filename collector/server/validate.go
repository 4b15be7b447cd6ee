package server

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/reflect/protoreflect"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Report bounds, beyond the method's byte limit.
const (
	maxStringLen = 4096 // any string anywhere in a report
	maxListLen   = 4096 // any repeated field anywhere in a report
	maxResults   = 512
	maxNameLen   = 128 // agent version, policy name, rule ids
	maxDepth     = 16
	maxMapLen    = 64 // a catalogue Text's parameters
)

// validateReport checks a report before anything is stored.
func validateReport(r *wardv1.Report) error {
	switch {
	case r == nil:
		return errors.New("report is missing")
	case r.Sequence == 0:
		return errors.New("sequence must be greater than 0")
	case r.Sequence > math.MaxInt64:
		return errors.New("sequence is out of range")
	case r.Facts == nil:
		return errors.New("facts are missing")
	case r.CollectedAt == nil:
		return errors.New("collected_at is missing")
	case r.CollectedAt.CheckValid() != nil:
		return fmt.Errorf("collected_at: %v", r.CollectedAt.CheckValid())
	case len(r.AgentVersion) > maxNameLen:
		return errors.New("agent_version is too long")
	case len(r.PolicyName) > maxNameLen:
		return errors.New("policy_name is too long")
	case len(r.Results) > maxResults:
		return fmt.Errorf("%d results: at most %d", len(r.Results), maxResults)
	}
	for i, res := range r.Results {
		if res.RuleId == "" || len(res.RuleId) > maxNameLen {
			return fmt.Errorf("results[%d]: rule_id must be 1 to %d bytes", i, maxNameLen)
		}
	}
	if err := validateSeal(r.Seal); err != nil {
		return err
	}
	return bounded(r.ProtoReflect(), 0)
}

// bounded checks every string and list in a message tree.
func bounded(m protoreflect.Message, depth int) error {
	if depth > maxDepth {
		return errors.New("message nests too deep")
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			if l.Len() > maxListLen {
				err = fmt.Errorf("%s: %d entries, at most %d", fd.Name(), l.Len(), maxListLen)
				return false
			}
			for i := 0; i < l.Len() && err == nil; i++ {
				err = boundedValue(fd, l.Get(i), depth)
			}
		case fd.IsMap():
			// Only a catalogue Text's params are a map: name, value pairs,
			// bounded like lists and strings.
			mp := v.Map()
			if mp.Len() > maxMapLen {
				err = fmt.Errorf("%s: %d entries, at most %d", fd.Name(), mp.Len(), maxMapLen)
				return false
			}
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if err = boundedValue(fd.MapKey(), k.Value(), depth); err == nil {
					err = boundedValue(fd.MapValue(), mv, depth)
				}
				return err == nil
			})
		default:
			err = boundedValue(fd, v, depth)
		}
		return err == nil
	})
	return err
}

func boundedValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if len(v.String()) > maxStringLen {
			return fmt.Errorf("%s: longer than %d bytes", fd.Name(), maxStringLen)
		}
	case protoreflect.BytesKind:
		if len(v.Bytes()) > maxStringLen {
			return fmt.Errorf("%s: longer than %d bytes", fd.Name(), maxStringLen)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if err := bounded(v.Message(), depth+1); err != nil {
			return fmt.Errorf("%s.%w", fd.Name(), err)
		}
	}
	return nil
}
