package i18n

// Messages of connectivity-aware deadlines (issue 15, item 5): a rule
// whose grace counts connected time only says how much of it is left,
// and that its deadline waits while the device has no connection
// (docs/connectivity.md). The time left is a label and a number ("Connected
// days left: 3"), so no language needs plural forms.
func init() {
	register(map[string]map[string]string{
		"deadline.left_days": {
			"en": "Connected days left: {days}.",
			"fr": "Jours de connexion restants : {days}.",
			"es": "Días con conexión restantes: {days}.",
			"ar": "الأيام المتبقية مع اتصال بالإنترنت: {days}.",
			"ru": "Осталось дней с подключением: {days}.",
			"uk": "Залишилося днів із підключенням: {days}.",
			"pt": "Dias com ligação que faltam: {days}.",
		},
		"deadline.left_hours": {
			"en": "Connected hours left: {hours}.",
			"fr": "Heures de connexion restantes : {hours}.",
			"es": "Horas con conexión restantes: {hours}.",
			"ar": "الساعات المتبقية مع اتصال بالإنترنت: {hours}.",
			"ru": "Осталось часов с подключением: {hours}.",
			"uk": "Залишилося годин із підключенням: {hours}.",
			"pt": "Horas com ligação que faltam: {hours}.",
		},
		"deadline.left_soon": {
			"en": "Less than an hour of connected time is left.",
			"fr": "Il reste moins d'une heure de connexion.",
			"es": "Queda menos de una hora con conexión.",
			"ar": "تبقّى أقل من ساعة من وقت الاتصال.",
			"ru": "Осталось меньше часа с подключением.",
			"uk": "Залишилося менше години з підключенням.",
			"pt": "Falta menos de uma hora com ligação.",
		},
		"deadline.if_connected": {
			"en": "Only time with an internet connection counts: if you stay connected, the deadline is {deadline}.",
			"fr": "Seul le temps passé connecté à Internet compte : si vous restez connecté, la date limite est le {deadline}.",
			"es": "Solo cuenta el tiempo con conexión a internet: si sigue conectado, la fecha límite es el {deadline}.",
			"ar": "لا يُحتسب إلا الوقت الذي يكون فيه جهازك متصلًا بالإنترنت: إذا بقيت متصلًا، فالموعد النهائي هو {deadline}.",
			"ru": "Считается только время с подключением к интернету: если вы останетесь на связи, срок — {deadline}.",
			"uk": "Зараховується лише час із підключенням до інтернету: якщо ви залишатиметеся на зв’язку, термін — {deadline}.",
			"pt": "Só conta o tempo com ligação à internet: se continuar ligado, o prazo é {deadline}.",
		},
		"deadline.paused": {
			"en": "Deadline paused: no connection since {time}. Only time with an internet connection counts, so the deadline waits until you are connected again.",
			"fr": "Date limite en pause : pas de connexion depuis le {time}. Seul le temps passé connecté à Internet compte : la date limite attend que vous soyez de nouveau connecté.",
			"es": "Fecha límite en pausa: sin conexión desde el {time}. Solo cuenta el tiempo con conexión a internet, así que la fecha límite espera hasta que vuelva a estar conectado.",
			"ar": "الموعد النهائي متوقف مؤقتًا: لا يوجد اتصال منذ {time}. لا يُحتسب إلا الوقت الذي يكون فيه جهازك متصلًا بالإنترنت، لذلك ينتظر الموعد النهائي حتى تتصل من جديد.",
			"ru": "Срок приостановлен: нет подключения с {time}. Считается только время с подключением к интернету, поэтому срок не идёт, пока вы снова не подключитесь.",
			"uk": "Термін призупинено: немає підключення з {time}. Зараховується лише час із підключенням до інтернету, тож термін не спливає, доки ви знову не підключитеся.",
			"pt": "Prazo em pausa: sem ligação desde {time}. Só conta o tempo com ligação à internet, por isso o prazo espera até voltar a estar ligado.",
		},
		"deadline.paused_since_found": {
			"en": "Deadline paused: no connection since this problem was found. Only time with an internet connection counts, so the deadline waits until you are connected again.",
			"fr": "Date limite en pause : pas de connexion depuis que ce problème a été constaté. Seul le temps passé connecté à Internet compte : la date limite attend que vous soyez de nouveau connecté.",
			"es": "Fecha límite en pausa: sin conexión desde que se detectó este problema. Solo cuenta el tiempo con conexión a internet, así que la fecha límite espera hasta que vuelva a estar conectado.",
			"ar": "الموعد النهائي متوقف مؤقتًا: لا يوجد اتصال منذ اكتشاف هذه المشكلة. لا يُحتسب إلا الوقت الذي يكون فيه جهازك متصلًا بالإنترنت، لذلك ينتظر الموعد النهائي حتى تتصل من جديد.",
			"ru": "Срок приостановлен: нет подключения с тех пор, как обнаружена эта проблема. Считается только время с подключением к интернету, поэтому срок не идёт, пока вы снова не подключитесь.",
			"uk": "Термін призупинено: немає підключення відтоді, як виявлено цю проблему. Зараховується лише час із підключенням до інтернету, тож термін не спливає, доки ви знову не підключитеся.",
			"pt": "Prazo em pausa: sem ligação desde que este problema foi detetado. Só conta o tempo com ligação à internet, por isso o prazo espera até voltar a estar ligado.",
		},
		"deadline.connected_overdue": {
			"en": "Overdue: the connected time allowed to fix this is used up. Please fix this as soon as you can, or ask your IT contact for help.",
			"fr": "En retard : le temps de connexion prévu pour corriger cela est écoulé. Corrigez-le dès que possible, ou demandez de l'aide à votre contact informatique.",
			"es": "Atrasado: se agotó el tiempo con conexión previsto para corregirlo. Corríjalo en cuanto pueda o pida ayuda a su contacto de informática.",
			"ar": "متأخر: انتهى وقت الاتصال المسموح به لإصلاح هذا. يرجى إصلاح ذلك في أقرب وقت ممكن، أو اطلب المساعدة من مسؤول تقنية المعلومات.",
			"ru": "Срок истёк: время с подключением, отведённое на исправление, закончилось. Исправьте это, как только сможете, или попросите помощи у вашего ИТ-специалиста.",
			"uk": "Термін минув: час із підключенням, відведений на виправлення, закінчився. Виправте це, щойно зможете, або попросіть допомоги у вашого ІТ-фахівця.",
			"pt": "Prazo ultrapassado: o tempo com ligação previsto para corrigir isto acabou. Corrija isto assim que puder, ou peça ajuda ao seu responsável de informática.",
		},
		"notify.reminder_connected": {
			"en": "Ward reminder: please fix this. {left}",
			"fr": "Rappel Ward : à corriger. {left}",
			"es": "Recordatorio de Ward: corríjalo. {left}",
			"ar": "تذكير من Ward: يرجى إصلاح هذا. {left}",
			"ru": "Напоминание Ward: исправьте это. {left}",
			"uk": "Нагадування Ward: виправте це. {left}",
			"pt": "Lembrete do Ward: corrija isto. {left}",
		},
		"notify.reminder_paused": {
			"en": "Ward reminder: please fix this when you are connected again (the deadline is paused)",
			"fr": "Rappel Ward : à corriger quand vous serez de nouveau connecté (la date limite est en pause)",
			"es": "Recordatorio de Ward: corríjalo cuando vuelva a estar conectado (la fecha límite está en pausa)",
			"ar": "تذكير من Ward: يرجى إصلاح هذا عندما تتصل من جديد (الموعد النهائي متوقف مؤقتًا)",
			"ru": "Напоминание Ward: исправьте это, когда снова будете на связи (срок приостановлен)",
			"uk": "Нагадування Ward: виправте це, коли знову будете на зв’язку (термін призупинено)",
			"pt": "Lembrete do Ward: corrija isto quando voltar a estar ligado (o prazo está em pausa)",
		},
		"notify.overdue_connected": {
			"en": "Ward: the connected time to fix this is used up",
			"fr": "Ward : le temps de connexion prévu pour corriger cela est écoulé",
			"es": "Ward: se agotó el tiempo con conexión previsto para corregirlo",
			"ar": "Ward: انتهى وقت الاتصال المسموح به لإصلاح هذا",
			"ru": "Ward: время с подключением, отведённое на исправление, закончилось",
			"uk": "Ward: час із підключенням, відведений на виправлення, закінчився",
			"pt": "Ward: o tempo com ligação previsto para corrigir isto acabou",
		},
	})
}
