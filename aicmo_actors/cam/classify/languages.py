"""Bounce-reason phrases in the languages mail servers and providers answer in.

Japanese, Russian, Chinese (simplified and traditional), Korean, Portuguese, Italian, Dutch,
German, French and Spanish, as their servers and webmail providers word a dead user, a full
mailbox, an unknown domain, a spam refusal and a failed delivery. `reasons.SPECIFIC_TEXT`
adds each reason's phrases to its own English ones, so the order of the reasons (an unknown
domain before an unknown user) holds in every language. The text is decoded first
(`parse.decode_bytes`) and its whitespace collapsed to single spaces; every pattern is
matched case-insensitively, has no nested repetition and no run longer than `.{0,30}`.
"""

from __future__ import annotations

import re

from contracts.cam import BounceReason

R = BounceReason

__all__ = ["PHRASES", "UNDELIVERED", "UNDELIVERED_TEXT", "phrases_for"]

#: reason -> language -> alternation of its phrases.
PHRASES: dict[BounceReason, dict[str, str]] = {
    R.USER_UNKNOWN: {
        "ja": r"(?:ユーザー?|アカウント|メールアドレス|アドレス|宛先|受信者|メールボックス)(?:は|が)? ?"
        r"(?:存在しません|存在しない|見つかりません|見つからない|不明です)|"
        r"存在しない(?:ユーザー?|アカウント|アドレス|メールアドレス|宛先)|宛先不明|該当するユーザー?(?:が|は)(?:い|あり)ません",
        "ru": r"(?:пользователь|адресат|получатель|почтовый ящик|ящик|адрес|аккаунт|учетная запись) "
        r"(?:\S++ )?(?:не найден|не существует|не обнаружен)|"
        r"неизвестн\w{2,3} (?:пользовател|получател|адрес)|несуществующ\w* (?:адрес|ящик|пользовател|получател)|"
        r"такого (?:пользователя|ящика|адреса|получателя) нет",
        "zh": r"(?:用户|用戶|使用者|收件人|收件者|邮箱|郵箱|信箱|帐号|帳號|账号|账户|帳戶|地址|用户名)(?:地址)?不存在|"
        r"查无此人|查無此人|无此用户|無此用戶|找不到(?:收件人|收件者|该用户|該用戶|用户|用戶)",
        "ko": r"존재하지 않는 (?:사용자|계정|메일 ?주소|주소|수신자|아이디|받는 ?사람)|"
        r"(?:사용자|계정|수신자|메일 ?주소|주소|받는 ?사람|아이디)(?:가|이|를|은|는)? "
        r"?(?:존재하지 않|없습니다|찾을 수 없)|없는 (?:사용자|계정|메일 ?주소)",
        "pt": r"(?:usu[áa]rio|utilizador|destinat[áa]rio|endere[çc]o(?: de e-?mail)?|conta|caixa postal) "
        r"(?:desconhecido|inexistente|n[ãa]o encontrad[oa]|n[ãa]o existe)|n[ãa]o existe",
        "it": r"(?:utente|destinatario|indirizzo|casella(?: di posta)?|account) "
        r"(?:sconosciuto|inesistente|non esiste|non trovato|non valido)|non esiste",
        "nl": r"(?:gebruiker|ontvanger|e-?mailadres|adres|mailbox|postvak) "
        r"(?:is )?(?:onbekend|bestaat niet|niet gevonden)|onbekende (?:gebruiker|ontvanger)|bestaat niet",
        "de": r"(?:empf[äa]nger(?:adresse)?|benutzer|postfach|e-?mail-?adresse|adresse) "
        r"(?:ist )?(?:unbekannt|nicht gefunden|existiert nicht|nicht vorhanden)|"
        r"unbekannter? (?:empf[äa]nger|benutzer)|ung[üu]ltige (?:empf[äa]nger|e-?mail-?adresse|adresse)|"
        r"existiert nicht|nicht gefunden",
        "fr": r"(?:destinataire|utilisateur|adresse(?: e-?mail)?|bo[îi]te (?:aux lettres|mail)|compte) "
        r"(?:inconnue?|inexistante?|introuvable)|n'existe (?:pas|plus)|adresse (?:e-?mail )?inconnue",
        "es": r"(?:usuario|destinatario|direcci[óo]n(?: de correo)?|buz[óo]n|cuenta) "
        r"(?:desconocid[oa]|inexistente|no encontrad[oa]|no existe|no v[áa]lid[oa])|no existe",
    },
    R.MAILBOX_FULL: {
        "ja": r"メールボックス(?:が|は|の)? ?(?:一杯|いっぱい|満杯|容量)|容量(?:が|を)? ?(?:超過|オーバー|不足|超え)|"
        r"容量制限|ディスク容量",
        "ru": r"(?:почтовый )?ящик (?:\S++ )?(?:переполнен|заполнен)|превышен\w* (?:квот|лимит|размер)|"
        r"квота (?:\S++ )?(?:превышена|исчерпана)|недостаточно места|нет места",
        "zh": r"(?:邮箱|郵箱|信箱|空间|空間|容量|配额|配額)(?:已满|已滿|不足)|"
        r"(?:超过|超出|超過)了?(?:邮箱|郵箱|信箱)?(?:的)?(?:配额|配額|容量|限额|限額|空间|空間)",
        "ko": r"(?:메일함|사서함|편지함)(?:이)? ?(?:가득|꽉|용량)|용량(?:이|을)? ?(?:초과|부족)|"
        r"저장 ?공간(?:이)? ?부족|할당량(?:을|이)? ?초과",
        "pt": r"caixa (?:postal|de correio|de entrada) .{0,30}(?:cheia|lotada)|caixa (?:est[áa] )?(?:cheia|lotada)|"
        r"(?:cota|quota) (?:excedida|esgotada)|excedeu (?:a )?(?:sua )?(?:cota|quota)|espa[çc]o insuficiente",
        "it": r"casella .{0,30}piena|spazio (?:esaurito|insufficiente)|quota (?:superata|esaurita)|"
        r"superato (?:la quota|il limite)",
        "nl": r"(?:mailbox|postvak|postbus) (?:is )?vol|quota overschreden|limiet (?:overschreden|bereikt)|"
        r"onvoldoende (?:schijf|opslag)?ruimte",
        "de": r"postfach (?:ist )?voll|speicherplatz|(?:speicher|kontingent|quota) .{0,20}(?:ersch[öo]pft|"
        r"[üu]berschritten)",
        "fr": r"boite (?:du destinataire )?pleine|bo[îi]te .{0,30}(?:pleine|satur[ée]e)|"
        r"quota (?:d[ée]pass[ée]|atteint)|d[ée]passement de quota|espace (?:de stockage )?insuffisant",
        "es": r"buz[oó]n .{0,30}(?:lleno|completo)|cuota (?:excedida|superada)|"
        r"(?:excedido|superado) (?:su |la )?cuota|espacio insuficiente",
    },
    R.HOST_UNKNOWN: {
        "ja": r"ドメイン(?:名)?(?:が|は)? ?(?:存在しません|存在しない|見つかりません|解決できません)|"
        r"存在しないドメイン|"
        r"ホスト(?:名)?(?:が|は)? ?(?:見つかりません|存在しません)",
        "ru": r"домен (?:\S++ )?(?:не найден|не существует)|домена (?:\S++ )?не существует|"
        r"(?:неизвестный|несуществующий) домен|хост (?:\S++ )?не найден",
        "zh": r"(?:域名|网域|網域|主机|主機)(?:不存在|无法解析|無法解析|解析失败|解析失敗)|"
        r"找不到(?:域名|主机|主機|網域)",
        "ko": r"(?:도메인|호스트)(?:을|를|이|가)? ?(?:찾을 수 없|존재하지 않)|존재하지 않는 도메인",
        "pt": r"dom[íi]nio (?:\S++ )?(?:n[ãa]o encontrado|inexistente|n[ãa]o existe|desconhecido)|"
        r"host (?:desconhecido|n[ãa]o encontrado)",
        "it": r"dominio (?:\S++ )?(?:inesistente|sconosciuto|non trovato|non esiste)|host (?:sconosciuto|non trovato)",
        "nl": r"domein(?:naam)? (?:\S++ )?(?:bestaat niet|is onbekend|onbekend|niet gevonden)|onbekend domein|"
        r"host (?:niet gevonden|onbekend)",
        "de": r"domain (?:\S++ )?(?:existiert nicht|nicht gefunden|unbekannt)|unbekannte domain|"
        r"(?:host|rechner) (?:nicht gefunden|unbekannt)",
        "fr": r"domaine (?:\S++ )?(?:inconnu|inexistant|introuvable|n'existe pas)|h[ôo]te (?:inconnu|introuvable)",
        "es": r"dominio (?:\S++ )?(?:desconocido|inexistente|no encontrado|no existe)|host desconocido|"
        r"no se encontr[óo] el dominio",
    },
    R.SPAM_DETECTED: {
        "ja": r"迷惑メール|スパム",
        "ru": r"спам|нежелательн\w* (?:почт|рассылк|письм|сообщени)",
        "zh": r"垃圾邮件|垃圾郵件|垃圾信",
        "ko": r"스팸|광고성 (?:메일|정보)",
        "pt": r"lixo eletr[ôo]nico|mensagem (?:indesejada|n[ãa]o solicitada)",
        "it": r"posta indesiderata|messaggio indesiderato",
        "nl": r"ongewenste (?:e-?mail|mail|berichten?)",
        "de": r"unerw[üu]nschte (?:werbung|e-?mail|nachricht)",
        "fr": r"courrier ind[ée]sirable|pourriel|message ind[ée]sirable",
        "es": r"correo no deseado|no solicitado",
    },
}

#: "could not be delivered", per language: what a bounce's text or subject says in them.
UNDELIVERED: dict[str, str] = {
    "ja": r"配信できませんでした|配送できませんでした|送信できませんでした|届けることができませんでした|"
    r"配信不能|配送不能|"
    r"配信エラー|配送エラー|配信に失敗",
    "ru": r"не (?:может быть|было|были) доставлен|не доставлено|недоставлен|не удалось доставить|доставка не удалась",
    "zh": r"无法投递|無法投遞|投递失败|投遞失敗|无法送达|無法送達|未能送达|发送失败|發送失敗|退信",
    "ko": r"전달되지 않았습니다|전달할 수 없|전송(?:에)? ?실패|발송 ?실패|배달되지 않|반송",
    "pt": r"n[ãa]o (?:p[ôo]de|foi poss[íi]vel) (?:ser )?entreg|n[ãa]o foi entregue|n[ãa]o entregue|"
    r"falha (?:na|de) entrega",
    "it": r"non (?:[èe]'? stato (?:possibile )?)?(?:recapitat|consegnat|recapitare|consegnare)|"
    r"impossibile (?:recapitare|consegnare)|mancato recapito|non recapitabile",
    "nl": r"kon niet worden (?:afgeleverd|bezorgd)|niet (?:afgeleverd|bezorgd)|onbestelbaar|"
    r"(?:bezorging|aflevering) mislukt",
    "de": r"konnte nicht zugestellt werden|nicht zustellbar|unzustellbar|zustellung fehlgeschlagen",
    "fr": r"n'a pas pu [êe]tre (?:remis|distribu|livr)|non remis|non distribu|"
    r"[ée]chec de (?:la )?(?:remise|livraison|distribution)|impossible de (?:remettre|distribuer|livrer)",
    "es": r"no (?:se )?(?:pudo|puede|ha podido) (?:ser )?entregad?|no entregado|error de entrega|"
    r"fallo en la entrega|imposible entregar",
}
#: Any language's "could not be delivered" (for the bounce detectors, next to a daemon sender).
UNDELIVERED_TEXT = re.compile("|".join(UNDELIVERED.values()), re.I)


def phrases_for(reason: BounceReason) -> str:
    """The alternation of `reason`'s phrases in every language ('' when it has none)."""
    return "|".join(PHRASES.get(reason, {}).values())
