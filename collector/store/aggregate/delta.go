package aggregate

import "slices"

// Snapshot is what the aggregates know of one device, before or after a
// write. Each store builds it from what its write read (or, after the
// write, from what it wrote).
type Snapshot struct {
	ID      string
	Exists  bool
	Group   string
	Class   string // ClassOf
	Seen    int64  // coalesce(last_seen, enrolled_at)
	States  int    // rule states
	StateAt int64  // when the rule states were last set
	// Failing is the rules whose verdict is FAIL, with failing_since
	// (nil when unset).
	Failing map[string]*int64
}

// TrendClass is the class the trend counts the device in, "" for none: a
// revoked device, or one without a verdict yet.
func (s Snapshot) TrendClass() string {
	if !s.Exists || s.Class == ClassRevoked || s.States == 0 {
		return ""
	}
	return s.Class
}

// Counter keys, one type per counter table.
type (
	DevKey  struct{ Group, Class string }
	SeenKey struct {
		Width, Bucket int64
		Group, Class  string
	}
	RuleKey struct {
		Width, Bucket int64
		Rule          string
	}
	HourKey struct {
		Group, Rule string
		Hour        int64
	}
	FailKey struct {
		Group, Rule, Device string
		Since               int64
	}
)

// Delta is the change of every counter writes make: of one write, or of
// a batch of them (which the stores write once, before COMMIT).
type Delta struct {
	Dev     map[DevKey]int
	Seen    map[SeenKey]int
	Rule    map[RuleKey]int
	Hour    map[HourKey]int
	Failing map[FailKey]int
	// Trend is the change of the trend's classes (compliant, failing,
	// unknown) from a day on.
	Trend map[int64][3]int
}

// NewDelta is an empty Delta.
func NewDelta() *Delta {
	return &Delta{Dev: map[DevKey]int{}, Seen: map[SeenKey]int{}, Rule: map[RuleKey]int{}, Hour: map[HourKey]int{},
		Failing: map[FailKey]int{}, Trend: map[int64][3]int{}}
}

// Add adds the snapshot's contribution to every counter, times sign.
func (d *Delta) Add(s Snapshot, sign int) {
	if !s.Exists {
		return
	}
	d.Dev[DevKey{s.Group, s.Class}] += sign
	if s.Class == ClassRevoked {
		return
	}
	for _, w := range BucketWidths {
		b := FloorDiv(s.Seen, w)
		d.Seen[SeenKey{w, b, s.Group, s.Class}] += sign
		for rule := range s.Failing {
			d.Rule[RuleKey{w, b, rule}] += sign
		}
	}
	for rule, since := range s.Failing {
		if since == nil {
			continue
		}
		d.Failing[FailKey{s.Group, rule, s.ID, *since}] += sign
		d.Hour[HourKey{s.Group, rule, FloorDiv(*since, HourNanos)}] += sign
	}
}

// Change adds the difference between before and after (the same device).
// at (nanoseconds) is when the change happened: the trend counts it from
// that day, or from the device's previous change if that was later.
func (d *Delta) Change(before, after Snapshot, at int64) {
	d.Add(before, -1)
	d.Add(after, 1)
	from, to := before.TrendClass(), after.TrendClass()
	if from == to {
		return
	}
	day := FloorDiv(max(at, before.StateAt), DayNanos)
	c := d.Trend[day]
	for i, class := range [...]string{ClassCompliant, ClassFailing, ClassUnknown} {
		if class == from {
			c[i]--
		}
		if class == to {
			c[i]++
		}
	}
	d.Trend[day] = c
}

// Merge adds o's changes to d's.
func (d *Delta) Merge(o *Delta) {
	mergeInto(d.Dev, o.Dev)
	mergeInto(d.Seen, o.Seen)
	mergeInto(d.Rule, o.Rule)
	mergeInto(d.Hour, o.Hour)
	mergeInto(d.Failing, o.Failing)
	for day, c := range o.Trend {
		t := d.Trend[day]
		for i := range c {
			t[i] += c[i]
		}
		d.Trend[day] = t
	}
}

func mergeInto[K comparable](dst, src map[K]int) {
	for k, n := range src {
		dst[k] += n
	}
}

// Empty reports whether d changes nothing.
func (d *Delta) Empty() bool {
	return len(d.Dev)+len(d.Seen)+len(d.Rule)+len(d.Hour)+len(d.Failing)+len(d.Trend) == 0
}

// Days is the days d changes the trend from, oldest first: the order to
// write them in (each day's row starts as the day before it stood).
func (d *Delta) Days() []int64 {
	days := make([]int64, 0, len(d.Trend))
	for day := range d.Trend {
		days = append(days, day)
	}
	slices.Sort(days)
	return days
}
