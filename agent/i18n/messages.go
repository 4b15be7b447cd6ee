package i18n

// messages holds every message of the agent, by id then language.
// Placeholders are {name}; each language must use the same ones.
var messages = map[string]map[string]string{
	"status.header": {
		"en": "Ward status: policy {policy} (version {version}), checked {checked}",
		"fr": "État Ward : politique {policy} (version {version}), vérifiée le {checked}",
		"es": "Estado de Ward: política {policy} (versión {version}), comprobada el {checked}",
		"ar": "حالة Ward: السياسة {policy} (الإصدار {version})، تم الفحص في {checked}",
	},
	"status.all_good": {
		"en": "All good: this laptop meets every rule. Nothing to do.",
		"fr": "Tout va bien : cet ordinateur respecte toutes les règles. Rien à faire.",
		"es": "Todo bien: este portátil cumple todas las reglas. No hay nada que hacer.",
		"ar": "كل شيء على ما يرام: هذا الحاسوب يستوفي جميع القواعد. لا شيء مطلوب منك.",
	},
	"status.problems": {
		"en": "Things that need your attention: {count}",
		"fr": "Points qui demandent votre attention : {count}",
		"es": "Cosas que necesitan su atención: {count}",
		"ar": "أمور تحتاج إلى انتباهك: {count}",
	},
	"status.wrong": {
		"en": "What is wrong: {observed}",
		"fr": "Ce qui ne va pas : {observed}",
		"es": "Qué falla: {observed}",
		"ar": "ما المشكلة: {observed}",
	},
	"status.needed": {
		"en": "What is needed: {expected}",
		"fr": "Ce qui est demandé : {expected}",
		"es": "Qué se necesita: {expected}",
		"ar": "المطلوب: {expected}",
	},
	"status.why": {
		"en": "Why it matters: {why}",
		"fr": "Pourquoi c'est important : {why}",
		"es": "Por qué importa: {why}",
		"ar": "لماذا هذا مهم: {why}",
	},
	"status.steps": {
		"en": "What to do:",
		"fr": "Que faire :",
		"es": "Qué hacer:",
		"ar": "ما العمل:",
	},
	"status.deadline": {
		"en": "Deadline: {deadline}",
		"fr": "Date limite : {deadline}",
		"es": "Fecha límite: {deadline}",
		"ar": "الموعد النهائي: {deadline}",
	},
	"status.overdue": {
		"en": "Overdue: the deadline was {deadline}. Please fix this as soon as you can, or ask your IT contact for help.",
		"fr": "En retard : la date limite était le {deadline}. Corrigez-le dès que possible, ou demandez de l'aide à votre contact informatique.",
		"es": "Atrasado: la fecha límite era el {deadline}. Corríjalo en cuanto pueda o pida ayuda a su contacto de informática.",
		"ar": "متأخر: كان الموعد النهائي {deadline}. يرجى إصلاح ذلك في أقرب وقت ممكن، أو اطلب المساعدة من مسؤول تقنية المعلومات.",
	},
	"status.unknown": {
		"en": "Ward could not check: {title}",
		"fr": "Ward n'a pas pu vérifier : {title}",
		"es": "Ward no pudo comprobar: {title}",
		"ar": "لم يتمكن Ward من التحقق من: {title}",
	},
	"status.unknown_reason": {
		"en": "Reason: {reason}",
		"fr": "Raison : {reason}",
		"es": "Motivo: {reason}",
		"ar": "السبب: {reason}",
	},
	"status.unknown_help": {
		"en": "This is not your fault. If it stays this way, tell your IT contact.",
		"fr": "Ce n'est pas de votre faute. Si cela dure, prévenez votre contact informatique.",
		"es": "No es culpa suya. Si sigue así, avise a su contacto de informática.",
		"ar": "هذا ليس خطأك. إذا استمر الأمر، أخبر مسؤول تقنية المعلومات.",
	},
	"status.not_all_checked": {
		"en": "Nothing needs fixing, but some checks could not be done (see above).",
		"fr": "Rien à corriger, mais certaines vérifications n'ont pas pu être faites (voir ci-dessus).",
		"es": "No hay nada que corregir, pero algunas comprobaciones no se pudieron hacer (vea arriba).",
		"ar": "لا شيء يحتاج إلى إصلاح، لكن تعذّر إجراء بعض الفحوص (انظر أعلاه).",
	},
	"status.from_file": {
		"en": "The Ward service is not running right now. This is the last status it saved, from {checked}.",
		"fr": "Le service Ward ne fonctionne pas en ce moment. Voici le dernier état enregistré, du {checked}.",
		"es": "El servicio Ward no está funcionando ahora. Este es el último estado que guardó, del {checked}.",
		"ar": "خدمة Ward لا تعمل الآن. هذه آخر حالة حفظتها، بتاريخ {checked}.",
	},
	"status.none": {
		"en": "The Ward service is not running and has not saved a status yet. Please ask your IT contact to check that Ward is installed and running.",
		"fr": "Le service Ward ne fonctionne pas et n'a encore enregistré aucun état. Demandez à votre contact informatique de vérifier que Ward est installé et en marche.",
		"es": "El servicio Ward no está funcionando y todavía no ha guardado ningún estado. Pida a su contacto de informática que compruebe que Ward está instalado y en marcha.",
		"ar": "خدمة Ward لا تعمل ولم تحفظ أي حالة بعد. يرجى أن تطلب من مسؤول تقنية المعلومات التحقق من أن Ward مثبّت ويعمل.",
	},
	"notify.new": {
		"en": "Ward: something on your laptop needs fixing",
		"fr": "Ward : un point de votre ordinateur est à corriger",
		"es": "Ward: hay algo que corregir en su portátil",
		"ar": "Ward: هناك أمر في حاسوبك يحتاج إلى إصلاح",
	},
	"notify.reminder": {
		"en": "Ward reminder: please fix this before {deadline}",
		"fr": "Rappel Ward : à corriger avant le {deadline}",
		"es": "Recordatorio de Ward: corríjalo antes del {deadline}",
		"ar": "تذكير من Ward: يرجى إصلاح هذا قبل {deadline}",
	},
	"notify.overdue": {
		"en": "Ward: the deadline has passed ({deadline})",
		"fr": "Ward : la date limite est dépassée ({deadline})",
		"es": "Ward: la fecha límite ha pasado ({deadline})",
		"ar": "Ward: انقضى الموعد النهائي ({deadline})",
	},
	"notify.body": {
		"en": "Not done yet: {title}. Open Ward status (ward-agent status) to see the steps.",
		"fr": "Pas encore fait : {title}. Ouvrez l'état Ward (ward-agent status) pour voir les étapes.",
		"es": "Aún no está hecho: {title}. Abra el estado de Ward (ward-agent status) para ver los pasos.",
		"ar": "لم يُنجز بعد: {title}. افتح حالة Ward (ward-agent status) لرؤية الخطوات.",
	},
	"notify.discreet": {
		"en": "Your laptop needs attention — open Ward status",
		"fr": "Votre ordinateur demande votre attention — ouvrez l'état Ward",
		"es": "Su portátil necesita atención — abra el estado de Ward",
		"ar": "حاسوبك يحتاج إلى انتباهك — افتح حالة Ward",
	},
	"privacy.header": {
		"en": "This is exactly what Ward sends to your organisation: the last report it prepared (number {sequence}, {checked}).",
		"fr": "Voici exactement ce que Ward envoie à votre organisation : le dernier rapport préparé (numéro {sequence}, {checked}).",
		"es": "Esto es exactamente lo que Ward envía a su organización: el último informe preparado (número {sequence}, {checked}).",
		"ar": "هذا بالضبط ما يرسله Ward إلى مؤسستك: آخر تقرير أعدّه (رقم {sequence}، {checked}).",
	},
	"privacy.never": {
		"en": "Ward never sends your name, your files, your browsing, your messages or where you are.",
		"fr": "Ward n'envoie jamais votre nom, vos fichiers, votre navigation, vos messages ni l'endroit où vous êtes.",
		"es": "Ward nunca envía su nombre, sus archivos, su navegación, sus mensajes ni dónde está usted.",
		"ar": "لا يرسل Ward أبدًا اسمك أو ملفاتك أو تصفحك أو رسائلك أو مكان وجودك.",
	},
	"privacy.results": {
		"en": "Results of the rules:",
		"fr": "Résultats des règles :",
		"es": "Resultados de las reglas:",
		"ar": "نتائج القواعد:",
	},
	"privacy.facts": {
		"en": "Facts about this laptop, exactly as sent:",
		"fr": "Faits sur cet ordinateur, exactement tels qu'envoyés :",
		"es": "Datos de este portátil, exactamente como se envían:",
		"ar": "معلومات عن هذا الحاسوب، كما تُرسل تمامًا:",
	},
	"privacy.none": {
		"en": "Ward has not prepared a report on this laptop yet, so nothing has been sent.",
		"fr": "Ward n'a encore préparé aucun rapport sur cet ordinateur : rien n'a été envoyé.",
		"es": "Ward todavía no ha preparado ningún informe en este portátil, así que no se ha enviado nada.",
		"ar": "لم يُعدّ Ward أي تقرير على هذا الحاسوب بعد، لذلك لم يُرسل أي شيء.",
	},
}
