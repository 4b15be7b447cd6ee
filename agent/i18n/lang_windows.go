package i18n

import "golang.org/x/sys/windows"

// osLang reads the user's first preferred UI language ("fr-FR").
func osLang() string {
	langs, err := windows.GetUserPreferredUILanguages(windows.MUI_LANGUAGE_NAME)
	if err != nil || len(langs) == 0 {
		return ""
	}
	return Normalize(langs[0])
}
