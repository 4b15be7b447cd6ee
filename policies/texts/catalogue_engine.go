package texts

// The policy engine's own words (package policies, evaluate.go).
func init() {
	register(map[string]map[string]string{
		"engine.platform_unknown": {
			"en": "cannot tell which platform this device runs",
			"fr": "impossible de savoir quel système fait fonctionner cet appareil",
			"es": "no se puede saber qué sistema usa este equipo",
			"ar": "لا يمكن معرفة النظام الذي يعمل عليه هذا الجهاز",
			"ru": "не удаётся определить, какая система работает на этом устройстве",
			"uk": "не вдається визначити, яка система працює на цьому пристрої",
			"pt": "não é possível saber que sistema este equipamento usa",
		},
	})
}
