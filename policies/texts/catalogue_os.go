package texts

// What Ward observed of the operating system (package policies:
// observed.go and the shipped policies' version rules). {system} is the
// system's own name and version ("Debian GNU/Linux 13", "Windows 11 Pro
// 10.0.26100 24H2").
func init() {
	register(map[string]map[string]string{
		"os.not_known": {
			"en": "operating system not known",
			"fr": "système d’exploitation inconnu",
			"es": "sistema operativo desconocido",
			"ar": "نظام التشغيل غير معروف",
			"ru": "операционная система неизвестна",
			"uk": "операційна система невідома",
			"pt": "sistema operativo desconhecido",
		},
		"os.system": {
			"en": "{system}", "fr": "{system}", "es": "{system}", "ar": "{system}", "ru": "{system}", "uk": "{system}", "pt": "{system}",
		},
		"os.system_build": {
			"en": "{system} (build {build})",
			"fr": "{system} (build {build})",
			"es": "{system} (compilación {build})",
			"ar": "{system} (الإصدار الفرعي {build})",
			"ru": "{system} (сборка {build})",
			"uk": "{system} (збірка {build})",
			"pt": "{system} (compilação {build})",
		},
		"os.version_unknown": {
			"en": "{system} (version not known)",
			"fr": "{system} (version inconnue)",
			"es": "{system} (versión desconocida)",
			"ar": "{system} (الإصدار غير معروف)",
			"ru": "{system} (версия неизвестна)",
			"uk": "{system} (версія невідома)",
			"pt": "{system} (versão desconhecida)",
		},
		"os.distribution_unknown": {
			"en": "the Linux distribution is not known",
			"fr": "la distribution Linux n’est pas connue",
			"es": "no se conoce la distribución de Linux",
			"ar": "توزيعة Linux غير معروفة",
			"ru": "дистрибутив Linux неизвестен",
			"uk": "дистрибутив Linux невідомий",
			"pt": "a distribuição Linux não é conhecida",
		},
		"os.no_minimum": {
			"en": "Ward has no minimum version for the distribution \"{distribution}\"",
			"fr": "Ward n’a pas de version minimale pour la distribution « {distribution} »",
			"es": "Ward no tiene una versión mínima para la distribución «{distribution}»",
			"ar": "ليس لدى Ward حد أدنى للإصدار للتوزيعة «{distribution}»",
			"ru": "у Ward нет минимальной версии для дистрибутива «{distribution}»",
			"uk": "Ward не має мінімальної версії для дистрибутива «{distribution}»",
			"pt": "o Ward não tem uma versão mínima para a distribuição «{distribution}»",
		},
	})
}
