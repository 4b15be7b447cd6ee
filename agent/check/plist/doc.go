// Package plist decodes Apple XML property lists into plain Go values, for
// collectors that read macOS tools' -plist output and plist files.
//
// It is deliberately small: XML plists only (binary plists are rejected with
// ErrBinary), a nesting limit, and values as Go types a collector can switch
// on:
//
//	<dict>    map[string]any
//	<array>   []any
//	<string>  string
//	<integer> int64
//	<real>    float64
//	<true/>   bool
//	<date>    time.Time
//	<data>    []byte
package plist
