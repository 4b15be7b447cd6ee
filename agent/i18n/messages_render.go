package i18n

// The words of a notification's body when it can say what Ward found
// (agent/notify: the observed text, rendered in the person's language).
// They say "What Ward found" as ward-agent status does (status.seen).
func init() {
	register(map[string]map[string]string{
		// A rule with a problem text: the problem first, in plain words.
		"notify.body_problem": {
			"en": "{problem}. What Ward found: {observed}. Open Ward status (ward-agent status) to see what to do.",
			"fr": "{problem}. Ce que Ward a constaté : {observed}. Ouvrez l'état Ward (ward-agent status) pour voir quoi faire.",
			"es": "{problem}. Lo que Ward encontró: {observed}. Abra el estado de Ward (ward-agent status) para ver qué hacer.",
			"ar": "{problem}. ما وجده Ward: {observed}. افتح حالة Ward (ward-agent status) لمعرفة ما يجب فعله.",
			"ru": "{problem}. Что обнаружил Ward: {observed}. Откройте состояние Ward (ward-agent status), чтобы увидеть, что сделать.",
			"uk": "{problem}. Що виявив Ward: {observed}. Відкрийте стан Ward (ward-agent status), щоб побачити, що зробити.",
			"pt": "{problem}. O que o Ward encontrou: {observed}. Abra o estado do Ward (ward-agent status) para ver o que fazer.",
		},
		// A rule of a policy that gives no problem text: its title, which
		// states the goal, after "Not done yet" (as notify.body).
		"notify.body_found": {
			"en": "Not done yet: {title}. What Ward found: {observed}. Open Ward status (ward-agent status) to see the steps.",
			"fr": "Pas encore fait : {title}. Ce que Ward a constaté : {observed}. Ouvrez l'état Ward (ward-agent status) pour voir les étapes.",
			"es": "Aún no está hecho: {title}. Lo que Ward encontró: {observed}. Abra el estado de Ward (ward-agent status) para ver los pasos.",
			"ar": "لم يُنجز بعد: {title}. ما وجده Ward: {observed}. افتح حالة Ward (ward-agent status) لرؤية الخطوات.",
			"ru": "Ещё не сделано: {title}. Что обнаружил Ward: {observed}. Откройте состояние Ward (ward-agent status), чтобы увидеть, что сделать.",
			"uk": "Ще не зроблено: {title}. Що виявив Ward: {observed}. Відкрийте стан Ward (ward-agent status), щоб побачити, що зробити.",
			"pt": "Ainda não está feito: {title}. O que o Ward encontrou: {observed}. Abra o estado do Ward (ward-agent status) para ver os passos.",
		},
	})
}
