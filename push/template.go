package push

import (
	"strings"
	"unicode/utf8"
)

// text is one notification's title and body with {param} placeholders.
type text struct{ title, body string }

// templates holds every kind in every language we ship; English is the
// fallback for a locale we do not have. Add a language by adding a column.
var templates = map[Kind]map[string]text{
	KindAgentReplied: {
		"en": {"New reply from {agent}", "{text}"},
		"de": {"Neue Antwort von {agent}", "{text}"},
		"es": {"Nueva respuesta de {agent}", "{text}"},
	},
	KindCallIncoming: {
		"en": {"Incoming {media} call", "Customer service is calling you"},
		"de": {"Eingehender {media}anruf", "Der Kundendienst ruft Sie an"},
		"es": {"Llamada de {media} entrante", "Atención al cliente le está llamando"},
	},
	KindCallMissed: {
		"en": {"Missed call", "We tried to reach you. Tap to call back."},
		"de": {"Verpasster Anruf", "Wir haben versucht, Sie zu erreichen. Tippen Sie, um zurückzurufen."},
		"es": {"Llamada perdida", "Intentamos contactarle. Toque para devolver la llamada."},
	},
	KindTechDispatched: {
		"en": {"A technician is on the way", "Your technician has been dispatched."},
		"de": {"Ein Techniker ist unterwegs", "Ihr Techniker wurde losgeschickt."},
		"es": {"Un técnico va en camino", "Hemos enviado a su técnico."},
	},
	KindTechArriving: {
		"en": {"Technician arriving", "Your technician is {minutes} minutes away."},
		"de": {"Techniker kommt gleich", "Ihr Techniker ist in {minutes} Minuten da."},
		"es": {"El técnico está llegando", "Su técnico llegará en {minutes} minutos."},
	},
	KindTechArrived: {
		"en": {"Technician arrived", "Your technician is at the door."},
		"de": {"Techniker ist da", "Ihr Techniker steht vor der Tür."},
		"es": {"El técnico ha llegado", "Su técnico está en la puerta."},
	},
	KindJobAssigned: {
		"en": {"New job", "You have been dispatched to ticket {ticket}."},
		"de": {"Neuer Auftrag", "Sie wurden zu Ticket {ticket} geschickt."},
		"es": {"Nuevo trabajo", "Se le ha asignado el ticket {ticket}."},
	},
	KindPartShipped: {
		"en": {"Your part has shipped", "Part {sku} is on its way."},
		"de": {"Ihr Ersatzteil ist unterwegs", "Teil {sku} wurde versandt."},
		"es": {"Su pieza ha sido enviada", "La pieza {sku} va en camino."},
	},
	KindPickupReady: {
		"en": {"Ready for pickup", "Pick it up at {store}. Hold number: {hold}."},
		"de": {"Zur Abholung bereit", "Abholbereit bei {store}. Reservierungsnummer: {hold}."},
		"es": {"Listo para recoger", "Recójalo en {store}. Número de reserva: {hold}."},
	},
	KindFollowUpOffer: {
		"en": {"An offer for you", "{offer}"},
		"de": {"Ein Angebot für Sie", "{offer}"},
		"es": {"Una oferta para usted", "{offer}"},
	},
}

// language is the primary subtag of a BCP 47 locale, lower case.
func language(locale string) string {
	l, _, _ := strings.Cut(locale, "-")
	l, _, _ = strings.Cut(l, "_")
	return strings.ToLower(l)
}

// render fills kind's template in locale's language (English if we do not
// have it). A missing parameter renders empty rather than as "{name}".
func render(kind Kind, locale string, params map[string]string) (title, body string) {
	byLang := templates[kind]
	t, ok := byLang[language(locale)]
	if !ok {
		t = byLang["en"]
	}
	fill := func(s string) string {
		var b strings.Builder
		for {
			i := strings.IndexByte(s, '{')
			j := strings.IndexByte(s[max(i, 0):], '}')
			if i < 0 || j < 0 {
				b.WriteString(s)
				return b.String()
			}
			b.WriteString(s[:i])
			b.WriteString(params[s[i+1:i+j]])
			s = s[i+j+1:]
		}
	}
	return fill(t.title), fill(t.body)
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
