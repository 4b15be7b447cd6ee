package i18n

// The messages of `ward-agent check`'s output (its table and how to fix
// each rule). Commands, paths and product names stay as in English.
func init() {
	register(map[string]map[string]string{
		"check.header": {
			"en": "Ward check: policy {policy} v{version} on {os} ({checked})",
			"fr": "Vérification Ward : politique {policy} v{version} sur {os} ({checked})",
			"es": "Comprobación de Ward: política {policy} v{version} en {os} ({checked})",
			"ar": "فحص Ward: السياسة {policy} (الإصدار {version}) على {os}، {checked}",
			"ru": "Проверка Ward: политика {policy} v{version}, система {os} ({checked})",
			"uk": "Перевірка Ward: політика {policy} v{version}, система {os} ({checked})",
			"pt": "Verificação do Ward: política {policy} v{version} em {os} ({checked})",
		},
		"check.col.status": {
			"en": "STATUS", "fr": "ÉTAT", "es": "ESTADO", "ar": "الحالة",
			"ru": "СТАТУС", "uk": "СТАН", "pt": "ESTADO",
		},
		"check.col.rule": {
			"en": "RULE", "fr": "RÈGLE", "es": "REGLA", "ar": "القاعدة",
			"ru": "ПРАВИЛО", "uk": "ПРАВИЛО", "pt": "REGRA",
		},
		"check.col.observed": {
			"en": "OBSERVED", "fr": "CONSTATÉ", "es": "OBSERVADO", "ar": "ما تم رصده",
			"ru": "ОБНАРУЖЕНО", "uk": "ВИЯВЛЕНО", "pt": "OBSERVADO",
		},
		"check.col.expected": {
			"en": "EXPECTED", "fr": "ATTENDU", "es": "ESPERADO", "ar": "المطلوب",
			"ru": "ТРЕБУЕТСЯ", "uk": "ПОТРІБНО", "pt": "ESPERADO",
		},
		"check.status.pass": {
			"en": "PASS", "fr": "OK", "es": "OK", "ar": "مستوفى",
			"ru": "OK", "uk": "OK", "pt": "OK",
		},
		"check.status.fail": {
			"en": "FAIL", "fr": "NON RESPECTÉ", "es": "NO CUMPLE", "ar": "غير مستوفى",
			"ru": "НЕ ВЫПОЛНЕНО", "uk": "НЕ ВИКОНАНО", "pt": "NÃO CUMPRE",
		},
		"check.status.unknown": {
			"en": "UNKNOWN", "fr": "NON VÉRIFIÉ", "es": "SIN VERIFICAR", "ar": "لم يُفحص",
			"ru": "НЕ ПРОВЕРЕНО", "uk": "НЕ ПЕРЕВІРЕНО", "pt": "NÃO VERIFICADO",
		},
		"check.severity.critical": {
			"en": "critical", "fr": "critique", "es": "crítica", "ar": "حرجة",
			"ru": "критическая", "uk": "критична", "pt": "crítica",
		},
		"check.severity.high": {
			"en": "high", "fr": "élevée", "es": "alta", "ar": "عالية",
			"ru": "высокая", "uk": "висока", "pt": "alta",
		},
		"check.severity.medium": {
			"en": "medium", "fr": "moyenne", "es": "media", "ar": "متوسطة",
			"ru": "средняя", "uk": "середня", "pt": "média",
		},
		"check.severity.low": {
			"en": "low", "fr": "faible", "es": "baja", "ar": "منخفضة",
			"ru": "низкая", "uk": "низька", "pt": "baixa",
		},
		"check.field": {
			"en": "{label}: {text}",
			"fr": "{label} : {text}",
			"es": "{label}: {text}",
			"ar": "{label}: {text}",
			"ru": "{label}: {text}",
			"uk": "{label}: {text}",
			"pt": "{label}: {text}",
		},
		"check.fix": {
			"en": "How to fix:",
			"fr": "Comment corriger :",
			"es": "Cómo corregirlo:",
			"ar": "طريقة الإصلاح:",
			"ru": "Как исправить:",
			"uk": "Як виправити:",
			"pt": "Como corrigir:",
		},
		"check.item": {
			"en": "{rule} [{status}, severity {severity}]: {title}",
			"fr": "{rule} [{status}, gravité {severity}] : {title}",
			"es": "{rule} [{status}, gravedad {severity}]: {title}",
			"ar": "{rule} [{status}، الخطورة {severity}]: {title}",
			"ru": "{rule} [{status}, важность: {severity}]: {title}",
			"uk": "{rule} [{status}, важливість: {severity}]: {title}",
			"pt": "{rule} [{status}, gravidade {severity}]: {title}",
		},
		"check.unknown_reason": {
			"en": "Could not tell: {reason}",
			"fr": "Impossible de vérifier : {reason}",
			"es": "No se pudo comprobar: {reason}",
			"ar": "تعذّر التحقق: {reason}",
			"ru": "Не удалось проверить: {reason}",
			"uk": "Не вдалося перевірити: {reason}",
			"pt": "Não foi possível verificar: {reason}",
		},
		"check.deadline": {
			"en": "Deadline: due {deadline}",
			"fr": "Date limite : {deadline}",
			"es": "Fecha límite: {deadline}",
			"ar": "الموعد النهائي: {deadline}",
			"ru": "Срок: до {deadline}",
			"uk": "Термін: до {deadline}",
			"pt": "Prazo: até {deadline}",
		},
		"check.overdue": {
			"en": "Deadline: OVERDUE since {deadline}",
			"fr": "Date limite : dépassée depuis le {deadline}",
			"es": "Fecha límite: vencida desde el {deadline}",
			"ar": "الموعد النهائي: انقضى منذ {deadline}",
			"ru": "Срок: истёк {deadline}",
			"uk": "Термін: минув {deadline}",
			"pt": "Prazo: ultrapassado desde {deadline}",
		},
		"check.summary": {
			"en": "{pass} passing, {fail} failing, {unknown} unknown",
			"fr": "Règles respectées : {pass}, non respectées : {fail}, non vérifiées : {unknown}",
			"es": "Reglas que se cumplen: {pass}; que no se cumplen: {fail}; sin verificar: {unknown}",
			"ar": "القواعد المستوفاة: {pass}، غير المستوفاة: {fail}، التي لم تُفحص: {unknown}",
			"ru": "Правил выполнено: {pass}, не выполнено: {fail}, не проверено: {unknown}",
			"uk": "Правил виконано: {pass}, не виконано: {fail}, не перевірено: {unknown}",
			"pt": "Regras cumpridas: {pass}; não cumpridas: {fail}; não verificadas: {unknown}",
		},
	})
}
