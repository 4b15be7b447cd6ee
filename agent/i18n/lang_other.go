//go:build !windows

package i18n

// osLang has nothing cheaper than the locale variables to read outside
// Windows: macOS sets LANG in Terminal sessions, and a LaunchAgent's user
// can set the language in the config file.
func osLang() string { return "" }
