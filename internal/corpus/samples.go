package corpus

// Sample texts. Every text must be encodable in its charset.
var samples = []struct {
	charset string
	texts   []string
}{
	{"utf-8", []string{
		"Grüße aus Köln",
		"Привет, как дела?",
		"日本語のテキスト",
		"Ελληνικά γράμματα",
		"emoji 🎉 party",
		"Zürich – Straße № 5",
	}},
	{"iso-8859-1", []string{
		"Café crème à la française",
		"Größe und Maße",
		"Señor Muñoz, ¿qué tal?",
		"Ångström über alles",
	}},
	{"windows-1252", []string{
		"“Smart quotes” – and dashes…",
		"Preis: 20 € pro Stück",
		"Œuvre complète ‰",
	}},
	{"iso-2022-jp", []string{
		"会議の議事録について",
		"お問い合わせありがとうございます",
		"新しいサーバーの件",
	}},
}

var topics = []string{
	"Quarterly report",
	"Lunch on Friday?",
	"NFS filer maintenance window",
	"Your invoice 2024-0117",
	"Meeting notes",
	"Re-indexing the archive",
	"Holiday schedule",
	"Question about quotas",
	"Server migration plan",
	"Welcome to the list",
	"A very long subject line that goes on and on about the migration of the mail spool from the old filer to the new cluster",
	"",
}

var people = []struct{ first, last, addr, intl string }{
	{"Alice", "Archer", "alice@example.net", "Alice Ärcher"},
	{"Bob", "Baker", "bob.baker@mail.example.org", "Bob Bäcker"},
	{"Carol", "Chen", "carol@example.com", "Carol Chén"},
	{"Dave", "Dubois", "d.dubois@example.fr", "Dávid Dubois"},
	{"Erin", "Eriksson", "erin+lists@example.se", "Erin Eriksson"},
	{"Frank", "Fischer", "frank@example.de", "Fränk Fischer"},
	{"Grace", "Garcia", "grace.garcia@example.es", "Grâce García"},
	{"list", "robot", "nfsimap-users@list.example.com", "Listé robot"},
}

var filenames = []string{
	"Übersicht Q3",
	"€ rates 2024",
	"résumé final",
	"plan (draft)",
	"naïve;name=x",
	"報告書",
}

var vocabulary = []string{
	"the", "mail", "server", "spool", "is", "on", "a", "filer", "and", "every",
	"node", "reads", "it", "over", "NFS", "we", "should", "check", "the", "lock",
	"before", "writing", "uidlist", "message", "folder", "client", "sends", "STATUS",
	"every", "few", "minutes", "which", "costs", "attribute", "lookups", "please",
	"review", "attached", "draft", "thanks", "regards", "meeting", "tomorrow", "at",
	"ten", "o'clock", "budget", "quarter", "numbers", "look", "fine", "but",
	"latency", "went", "up", "after", "migration", "of", "archive", "to", "new",
	"cluster", "From", "here", "-- ", ">", "quoted", "text", "line", "with", "dots.",
	"ok?", "yes,", "no.", "maybe;", "(see", "below)",
}
