package e2e

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestMbsync syncs a 2,000-message mailbox with mixed flags to a local
// maildir with mbsync (isync), changes flags and deletes on both sides,
// syncs again: both sides must agree, and a third sync must change nothing.
func TestMbsync(t *testing.T) {
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mbsync missing in CI: .ci/deps installs isync")
		}
		t.Skip("mbsync not installed (make deps installs isync)")
	}
	spool := t.TempDir()
	const total = 2000
	rng := rand.New(rand.NewSource(42))
	t.Logf("seed 42")
	inbox := filepath.Join(spool, "user1")
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(inbox, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	flagChoices := []string{"", "S", "FS", "RS", "D", "F", "S"}
	for i := 0; i < total; i++ {
		name := fmt.Sprintf("1700%06d.M%dP1.corpus:2,%s", i, i, flagChoices[rng.Intn(len(flagChoices))])
		text := fmt.Sprintf("From: sender%d@example.org\nTo: user1@example.org\nSubject: message %d\nMessage-ID: <m%d@corpus>\n\nbody %d\n", i%37, i, i, i)
		if err := os.WriteFile(filepath.Join(inbox, "cur", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := Start(t, Options{Spool: spool})
	local := t.TempDir()
	host, port := splitAddr(t, n.Addr)
	rc := filepath.Join(t.TempDir(), "mbsyncrc")
	conf := fmt.Sprintf(`IMAPAccount test
Host %s
Port %s
User user1
Pass password
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`, host, port, local, local)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	runSync := func(step string) {
		t.Helper()
		cmd := exec.Command(mbsync, "-c", rc, "-a")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync (%s): %v\n%s", step, err, out)
		}
	}

	runSync("first")
	server := serverState(t, n.Addr)
	if len(server) != total {
		t.Fatalf("server holds %d messages, want %d", len(server), total)
	}
	compareStates(t, "after the first sync", server, localState(t, filepath.Join(local, "INBOX")))

	// Change both sides: flags and deletions, some on the same messages.
	c := login(t, n.Addr, "user1", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var flagSet, delSet imap.SeqSet
	for i := 0; i < 150; i++ {
		flagSet.AddNum(uint32(1 + rng.Intn(total)))
	}
	for i := 0; i < 60; i++ {
		delSet.AddNum(uint32(1 + rng.Intn(total)))
	}
	if err := c.Store(flagSet, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged, imap.FlagAnswered}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(flagSet, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(delSet, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	changeLocal(t, filepath.Join(local, "INBOX"))

	runSync("second")
	server = serverState(t, n.Addr)
	compareStates(t, "after the second sync", server, localState(t, filepath.Join(local, "INBOX")))
	if len(server) >= total-60 || len(server) < total-200 {
		t.Fatalf("server holds %d messages after deletions on both sides", len(server))
	}

	beforeLocal := listing(t, filepath.Join(local, "INBOX"))
	runSync("third")
	if after := serverState(t, n.Addr); !equalStates(server, after) {
		t.Fatalf("third sync changed the server")
	}
	if afterLocal := listing(t, filepath.Join(local, "INBOX")); strings.Join(afterLocal, "\n") != strings.Join(beforeLocal, "\n") {
		t.Fatalf("third sync changed the local maildir")
	}
}

func splitAddr(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

// serverState maps Message-ID to the sorted flag letters the server shows.
func serverState(t *testing.T, addr string) map[string]string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("user1", "password").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if sel.NumMessages == 0 {
		return out
	}
	var all imap.SeqSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		var letters []string
		for _, f := range m.Flags {
			switch f {
			case imap.FlagSeen:
				letters = append(letters, "S")
			case imap.FlagFlagged:
				letters = append(letters, "F")
			case imap.FlagAnswered:
				letters = append(letters, "R")
			case imap.FlagDraft:
				letters = append(letters, "D")
			case imap.FlagDeleted:
				letters = append(letters, "T")
			}
		}
		sort.Strings(letters)
		id := m.Envelope.MessageID
		if _, dup := out[id]; dup {
			t.Fatalf("server shows %s twice", id)
		}
		out[id] = strings.Join(letters, "")
	}
	return out
}

var msgIDRe = regexp.MustCompile(`(?mi)^Message-ID:\s*<([^>]+)>`)

// localState reads the local maildir the same way.
func localState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			m := msgIDRe.FindSubmatch(b)
			if m == nil {
				t.Fatalf("local file %s has no Message-ID", e.Name())
			}
			flags := ""
			if _, info, ok := strings.Cut(e.Name(), ":2,"); ok {
				letters := strings.Split(strings.Map(func(r rune) rune {
					if strings.ContainsRune("DFRST", r) {
						return r
					}
					return -1
				}, info), "")
				sort.Strings(letters)
				flags = strings.Join(letters, "")
			}
			id := string(m[1])
			if _, dup := out[id]; dup {
				t.Fatalf("local maildir holds %s twice", id)
			}
			out[id] = flags
		}
	}
	return out
}

func compareStates(t *testing.T, when string, server, local map[string]string) {
	t.Helper()
	var diffs []string
	for id, f := range server {
		if lf, ok := local[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s on the server (%s) only", id, f))
		} else if lf != f {
			diffs = append(diffs, fmt.Sprintf("%s: server %q, local %q", id, f, lf))
		}
	}
	for id, f := range local {
		if _, ok := server[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s local (%s) only", id, f))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... %d more", len(diffs)-20))
		}
		t.Fatalf("%s the sides differ:\n%s", when, strings.Join(diffs, "\n"))
	}
}

func equalStates(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// changeLocal flips flags on some local messages and deletes others, as a
// local mail reader would.
func changeLocal(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "cur"))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		old := filepath.Join(dir, "cur", e.Name())
		switch {
		case i%40 == 3:
			if err := os.Remove(old); err != nil {
				t.Fatal(err)
			}
		case i%17 == 5:
			base, info, _ := strings.Cut(e.Name(), ":2,")
			info = strings.ReplaceAll(info, "S", "")
			if !strings.Contains(info, "F") {
				info = "F" + info
			}
			letters := strings.Split(info, "")
			sort.Strings(letters)
			if err := os.Rename(old, filepath.Join(dir, "cur", base+":2,"+strings.Join(letters, ""))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}
