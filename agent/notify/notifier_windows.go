package notify

import (
	"context"
	"encoding/base64"
	"unicode/utf16"
)

// toastScript shows a toast with PowerShell's own application id (so it
// needs no registration); the texts come from the base64 arguments, never
// from the script.
const toastScript = `
$title = [Text.Encoding]::Unicode.GetString([Convert]::FromBase64String($args[0]))
$body = [Text.Encoding]::Unicode.GetString([Convert]::FromBase64String($args[1]))
[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType = WindowsRuntime] | Out-Null
$xml = [Windows.UI.Notifications.ToastNotificationManager]::GetTemplateContent([Windows.UI.Notifications.ToastTemplateType]::ToastText02)
$text = $xml.GetElementsByTagName('text')
$text.Item(0).AppendChild($xml.CreateTextNode($title)) | Out-Null
$text.Item(1).AppendChild($xml.CreateTextNode($body)) | Out-Null
$app = '{1AC14E77-02E7-4E5D-B744-2EB1AE5198B7}\WindowsPowerShell\v1.0\powershell.exe'
[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier($app).Show([Windows.UI.Notifications.ToastNotification]::new($xml))
`

// Show raises a Windows toast through PowerShell. Not yet run on a real
// Windows desktop (see docs/prompts.md).
func (n native) Show(ctx context.Context, nt Notice) error {
	script := "& {" + toastScript + "} '" + b64(nt.Summary) + "' '" + b64(nt.Body) + "'"
	return n.run(ctx, "powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand", b64(script))
}

// b64 is base64 of UTF-16LE, what PowerShell's -EncodedCommand and
// [Text.Encoding]::Unicode read.
func b64(s string) string {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return base64.StdEncoding.EncodeToString(b)
}
