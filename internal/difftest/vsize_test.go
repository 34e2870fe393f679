package difftest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nfsimap/nfsimap/internal/corpus"
	"github.com/nfsimap/nfsimap/internal/e2e"
)

// TestWrongVirtualSizeIgnored runs nfsimap alone on the corpus as
// generated, whose ",W=" name fields are wrong (see fixVirtualSizes):
// RFC822.SIZE must still be the size of BODY[]. Dovecot trusts W= and
// breaks on such files, so this is not a differential test.
func TestWrongVirtualSizeIgnored(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	man, err := corpus.Generate(filepath.Join(spool, testUser), corpus.Options{Seed: 7, Messages: 120, MaxAttachment: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	withW := 0
	for _, m := range man.Messages {
		if strings.Contains(m.Name, ",W=") {
			withW++
		}
	}
	if withW == 0 {
		t.Fatal("the corpus has no names with W=; pick another seed")
	}
	node := e2e.Start(t, e2e.Options{Spool: spool, Users: map[string]string{testUser: testPassword}})
	c := login(t, node.Addr)
	resps, err := c.Command("FETCH 1:* (RFC822.SIZE BODY.PEEK[])")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range resps {
		it, err := FetchItems(r)
		if err != nil {
			continue
		}
		n++
		size, err := it["RFC822.SIZE"].Number()
		if err != nil {
			t.Fatalf("message %d: %v", r.Num, err)
		}
		if int(size) != len(it["BODY[]"].Str) {
			t.Errorf("message %d: RFC822.SIZE %d, BODY[] has %d bytes", r.Num, size, len(it["BODY[]"].Str))
		}
	}
	if n != len(man.InFolder("INBOX")) {
		t.Errorf("fetched %d messages, INBOX has %d", n, len(man.InFolder("INBOX")))
	}
	t.Logf("%d messages, %d with a W= field", n, withW)
}
