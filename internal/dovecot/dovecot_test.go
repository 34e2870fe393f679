package dovecot

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/nfsimap/nfsimap/internal/corpus"
)

func TestStartSelect(t *testing.T) {
	spool := t.TempDir()
	opt := corpus.DefaultOptions()
	opt.Messages = 60
	m, err := corpus.Generate(filepath.Join(spool, "alice"), opt)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s := Start(t, spool, map[string]string{"alice": "secret", "bob": "hunter2"})
	t.Logf("dovecot started in %v", time.Since(start).Round(time.Millisecond))

	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start = time.Now()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, s.Log())
	}
	t.Logf("login in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for _, f := range m.Folders {
		want := len(m.InFolder(f))
		sel, err := c.Select(f, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("select %s: %v\nlog:\n%s", f, err, s.Log())
		}
		if int(sel.NumMessages) != want {
			t.Errorf("%s: %d messages, corpus has %d", f, sel.NumMessages, want)
		}
	}
	t.Logf("read-only SELECT of %d folders in %v", len(m.Folders), time.Since(start).Round(time.Millisecond))
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if int(sel.NumMessages) != len(m.InFolder("INBOX")) || sel.UIDValidity == 0 {
		t.Errorf("INBOX: %+v", sel)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Error(err)
	}

	// A wrong password, last (see the package documentation).
	c2, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("bob", "wrong").Wait(); err == nil {
		t.Error("login with a wrong password worked")
	}
	start = time.Now()
	if err := s.Stop(); err != nil {
		t.Error(err)
	}
	t.Logf("dovecot stopped in %v", time.Since(start).Round(time.Millisecond))
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
