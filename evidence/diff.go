package evidence

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// diffSummary finds the first field where the file's summary differs
// from the recomputed one: its path ("summary.devices[0].rules[1]
// .periods[2].status") and what differs. Times compare as instants; an
// absent list and an empty one are the same.
func diffSummary(file, computed Summary) (path, what string) {
	return diffValue("summary", reflect.ValueOf(file), reflect.ValueOf(computed))
}

func diffValue(path string, a, b reflect.Value) (string, string) {
	if a.Type() == timeType {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		if !ta.Equal(tb) {
			return path, fmt.Sprintf("the file says %s, the facts give %s", stamp(ta), stamp(tb))
		}
		return "", ""
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			name := a.Type().Field(i).Name
			if tag := a.Type().Field(i).Tag.Get("json"); tag != "" && tag != "-" {
				name, _, _ = strings.Cut(tag, ",")
			}
			if p, w := diffValue(path+"."+name, a.Field(i), b.Field(i)); p != "" {
				return p, w
			}
		}
	case reflect.Slice:
		for i := range min(a.Len(), b.Len()) {
			if p, w := diffValue(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); p != "" {
				return p, w
			}
		}
		switch {
		case a.Len() > b.Len():
			return fmt.Sprintf("%s[%d]", path, b.Len()), fmt.Sprintf("the file has %d entries, the facts give %d", a.Len(), b.Len())
		case a.Len() < b.Len():
			return fmt.Sprintf("%s[%d]", path, a.Len()), fmt.Sprintf("the file has %d entries, the facts give %d", a.Len(), b.Len())
		}
	default:
		if !a.Equal(b) {
			return path, fmt.Sprintf("the file says %s, the facts give %s", show(a), show(b))
		}
	}
	return "", ""
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(v.Interface())
}
