package install

import (
	"html"
	"strings"
)

// NotifierLabel names the notifier's login item (launchd label, Run value).
const NotifierLabel = "org.wardhq.ward.notify"

// NotifierCommand is the notifier's command line with the program path
// quoted, as the Windows Run key and Task Scheduler want it.
func NotifierCommand(program string) string {
	return `"` + program + `" notify`
}

// DesktopEntry is the XDG autostart entry that starts the notifier when a
// user logs in to a desktop session.
func DesktopEntry(program string) string {
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=Ward\n" +
		"Comment=Tells you what to fix on this computer to meet your organisation's security policy\n" +
		"Exec=" + desktopQuote(program) + " notify\n" +
		"Icon=security-high\n" +
		"Terminal=false\n" +
		"NoDisplay=true\n" +
		"X-GNOME-Autostart-enabled=true\n"
}

// desktopQuote quotes an Exec argument as the Desktop Entry spec says.
func desktopQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\$`") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`)
	return `"` + r.Replace(s) + `"`
}

// LaunchAgentPlist is the launchd LaunchAgent that starts the notifier in
// every user's session at login.
func LaunchAgentPlist(program string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + NotifierLabel + `</string>
	<key>ProgramArguments</key>
	<array>
		<string>` + html.EscapeString(program) + `</string>
		<string>notify</string>
	</array>
	<key>LimitLoadToSessionType</key>
	<string>Aqua</string>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ProcessType</key>
	<string>Interactive</string>
</dict>
</plist>
`
}
