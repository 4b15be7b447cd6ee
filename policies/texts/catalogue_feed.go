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
