package texts

// Why the release feed (docs/feed.md) cannot be used: the reasons the
// feed functions give for UNKNOWN (package policies) and the agent and
// collector give when they refuse a feed. {serial} is a feed's serial,
// {expired_at} a time, {reason} an English reason (a refused signature).
func init() {
	register(map[string]map[string]string{
		"feed.none": {
			"en": "no release feed has been received yet, so what is up to date is not known",
			"fr": "aucun flux de versions n’a encore été reçu, on ne sait donc pas ce qui est à jour",
			"es": "todavía no se ha recibido ningún canal de versiones, así que no se sabe qué está al día",
			"ar": "لم تُستلم أي نشرة إصدارات بعد، لذلك لا يُعرف ما هو محدَّث",
			"ru": "лента выпусков ещё не получена, поэтому неизвестно, что является актуальным",
			"uk": "стрічку випусків ще не отримано, тому невідомо, що є актуальним",
			"pt": "ainda não foi recebido nenhum feed de versões, por isso não se sabe o que está atualizado",
		},
		"feed.unverifiable": {
			"en": "the release feed was refused: {reason}",
			"fr": "le flux de versions a été refusé : {reason}",
			"es": "se rechazó el canal de versiones: {reason}",
			"ar": "رُفضت نشرة الإصدارات: {reason}",
			"ru": "лента выпусков отклонена: {reason}",
			"uk": "стрічку випусків відхилено: {reason}",
			"pt": "o feed de versões foi recusado: {reason}",
		},
		"feed.expired": {
			"en": "the release feed (serial {serial}) expired on {expired_at}; a newer one is needed",
			"fr": "le flux de versions (numéro {serial}) a expiré le {expired_at} ; il en faut un plus récent",
			"es": "el canal de versiones (número {serial}) caducó el {expired_at}; se necesita uno más reciente",
			"ar": "انتهت صلاحية نشرة الإصدارات (الرقم {serial}) في {expired_at}؛ يلزم إصدار أحدث",
			"ru": "срок действия ленты выпусков (номер {serial}) истёк {expired_at}; нужна более новая",
			"uk": "термін дії стрічки випусків (номер {serial}) минув {expired_at}; потрібна новіша",
			"pt": "o feed de versões (número {serial}) expirou em {expired_at}; é preciso um mais recente",
		},
	})
}

// What the feed functions observe and why they cannot tell. {system} is
// the device's system ("macOS 15.7.1", "Windows 11 24H2 (26100.2605)",
// "ubuntu 22.04"), {eol} and {esm_eol} days, {releases} release ids,
// {detail} an English reason.
func init() {
	register(map[string]map[string]string{
		"feed.no_line": {
			"en": "the release feed does not know this system: {detail}",
			"fr": "le flux de versions ne connaît pas ce système : {detail}",
			"es": "el canal de versiones no conoce este sistema: {detail}",
			"ar": "نشرة الإصدارات لا تعرف هذا النظام: {detail}",
			"ru": "лента выпусков не знает эту систему: {detail}",
			"uk": "стрічка випусків не знає цієї системи: {detail}",
			"pt": "o feed de versões não conhece este sistema: {detail}",
		},
		"feed.no_releases": {
			"en": "the release feed lists no security releases for {system}, so it cannot tell which ones are missing",
			"fr": "le flux de versions ne liste aucune version de sécurité pour {system} : il ne peut pas dire lesquelles manquent",
			"es": "el canal de versiones no enumera versiones de seguridad para {system}: no puede decir cuáles faltan",
			"ar": "لا تذكر نشرة الإصدارات أي إصدارات أمان لـ {system}، فلا يمكنها معرفة ما ينقص منها",
			"ru": "в ленте выпусков нет выпусков безопасности для {system}, поэтому нельзя определить, каких не хватает",
			"uk": "у стрічці випусків немає випусків безпеки для {system}, тому не можна визначити, яких бракує",
			"pt": "o feed de versões não lista versões de segurança para {system}, por isso não consegue dizer quais faltam",
		},
		"feed.supported_no_eol": {
			"en": "{system}, supported (no end of support announced)",
			"fr": "{system}, pris en charge (aucune fin de prise en charge annoncée)",
			"es": "{system}, con soporte (no se ha anunciado el fin del soporte)",
			"ar": "{system}، مدعوم (لم يُعلَن عن نهاية الدعم)",
			"ru": "{system}, поддерживается (окончание поддержки не объявлено)",
			"uk": "{system}, підтримується (кінець підтримки не оголошено)",
			"pt": "{system}, com suporte (não foi anunciado o fim do suporte)",
		},
		"feed.supported_until": {
			"en": "{system}, supported until {eol}",
			"fr": "{system}, pris en charge jusqu’au {eol}",
			"es": "{system}, con soporte hasta el {eol}",
			"ar": "{system}، مدعوم حتى {eol}",
			"ru": "{system}, поддерживается до {eol}",
			"uk": "{system}, підтримується до {eol}",
			"pt": "{system}, com suporte até {eol}",
		},
		"feed.support_ended": {
			"en": "{system}, support ended on {eol}",
			"fr": "{system}, prise en charge terminée le {eol}",
			"es": "{system}, el soporte terminó el {eol}",
			"ar": "{system}، انتهى الدعم في {eol}",
			"ru": "{system}, поддержка закончилась {eol}",
			"uk": "{system}, підтримка закінчилася {eol}",
			"pt": "{system}, o suporte terminou em {eol}",
		},
		"feed.esm_only": {
			"en": "{system}, standard support ended on {eol}; Ubuntu Pro (ESM) runs until {esm_eol}, but Ward cannot tell whether it is enabled",
			"fr": "{system}, prise en charge standard terminée le {eol} ; Ubuntu Pro (ESM) dure jusqu’au {esm_eol}, mais Ward ne peut pas savoir s’il est activé",
			"es": "{system}, el soporte estándar terminó el {eol}; Ubuntu Pro (ESM) dura hasta el {esm_eol}, pero Ward no puede saber si está activado",
			"ar": "{system}، انتهى الدعم القياسي في {eol}؛ يستمر Ubuntu Pro (ESM) حتى {esm_eol}، لكن Ward لا يستطيع معرفة ما إذا كان مفعّلًا",
			"ru": "{system}, стандартная поддержка закончилась {eol}; Ubuntu Pro (ESM) действует до {esm_eol}, но Ward не может определить, включён ли он",
			"uk": "{system}, стандартна підтримка закінчилася {eol}; Ubuntu Pro (ESM) діє до {esm_eol}, але Ward не може визначити, чи його ввімкнено",
			"pt": "{system}, o suporte normal terminou em {eol}; o Ubuntu Pro (ESM) dura até {esm_eol}, mas o Ward não consegue saber se está ativado",
		},
		"feed.ahead": {
			"en": "{system}, newer than the release feed knows",
			"fr": "{system}, plus récent que ce que connaît le flux de versions",
			"es": "{system}, más reciente de lo que conoce el canal de versiones",
			"ar": "{system}، أحدث مما تعرفه نشرة الإصدارات",
			"ru": "{system}, новее, чем известно ленте выпусков",
			"uk": "{system}, новіша, ніж відомо стрічці випусків",
			"pt": "{system}, mais recente do que o feed de versões conhece",
		},
		"feed.about": {
			"en": "(release feed {serial}, {days} days old)",
			"fr": "(flux de versions {serial}, âgé de {days} jours)",
			"es": "(canal de versiones {serial}, de hace {days} días)",
			"ar": "(نشرة الإصدارات {serial}، عمرها {days} يومًا)",
			"ru": "(лента выпусков {serial}, возраст в днях: {days})",
			"uk": "(стрічка випусків {serial}, вік у днях: {days})",
			"pt": "(feed de versões {serial}, com {days} dias)",
		},
		"feed.none_missing": {
			"en": "no security release missing",
			"fr": "aucune version de sécurité ne manque",
			"es": "no falta ninguna versión de seguridad",
			"ar": "لا ينقص أي إصدار أمان",
			"ru": "все выпуски безопасности установлены",
			"uk": "усі випуски безпеки встановлено",
			"pt": "não falta nenhuma versão de segurança",
		},
		"feed.missing": {
			"en": "security releases missing: {releases}",
			"fr": "versions de sécurité manquantes : {releases}",
			"es": "versiones de seguridad que faltan: {releases}",
			"ar": "إصدارات أمان ناقصة: {releases}",
			"ru": "не установлены выпуски безопасности: {releases}",
			"uk": "не встановлено випуски безпеки: {releases}",
			"pt": "versões de segurança em falta: {releases}",
		},
		"feed.missing_exploited": {
			"en": "fixing a flaw attackers are already using: {releases}",
			"fr": "corrigeant une faille déjà exploitée par des attaquants : {releases}",
			"es": "que corrigen un fallo que los atacantes ya aprovechan: {releases}",
			"ar": "تصلح ثغرة يستغلها المهاجمون بالفعل: {releases}",
			"ru": "исправляющие уязвимость, которую уже используют злоумышленники: {releases}",
			"uk": "що виправляють вразливість, яку вже використовують зловмисники: {releases}",
			"pt": "que corrigem uma falha que atacantes já exploram: {releases}",
		},
	})
}
