// Package demo prepares a throw-away node for `make run`: a passwd-file
// with the user demo (password demo), a maildir spool with a welcome
// message, an index directory and a configuration file, all inside one
// directory.
package demo

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nfsimap/nfsimap/node/auth"
)

// User and Password of the demo account.
const (
	User     = "demo"
	Password = "demo"
)

// Setup creates (or refreshes) the demo files in dir and returns the path
// of the configuration file. The spool is kept if it exists; the
// passwd-file and configuration are rewritten. addr is the IMAP address.
func Setup(dir, addr string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	inbox := filepath.Join(dir, "spool", User, "Maildir")
	for _, d := range []string{filepath.Join(inbox, "cur"), filepath.Join(inbox, "new"), filepath.Join(inbox, "tmp"), filepath.Join(dir, "index")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("demo: %w", err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(inbox, "new"))
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	cur, err := os.ReadDir(filepath.Join(inbox, "cur"))
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if len(entries) == 0 && len(cur) == 0 {
		if err := writeSamples(inbox); err != nil {
			return "", err
		}
	}
	hash, err := auth.Hash("SHA512-CRYPT", Password, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	passwd := filepath.Join(dir, "passwd")
	home := filepath.Join(dir, "spool", User)
	if err := os.WriteFile(passwd, fmt.Appendf(nil, "%s:%s:::demo user:%s::\n", User, hash, home), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	cfg := fmt.Sprintf(`# Written by "nfsimap demo"; see "nfsimap config example" for every key.
listen:
  imap: %q
trusted_networks: [127.0.0.0/8, "::1/128"]
auth:
  passwd_file: %q
spool:
  inbox: %q
index_dir: %q
shutdown_grace: 5s
limits:
  fail_delay: 200ms
log:
  level: info
admin:
  socket: %q
`, addr, passwd, filepath.Join(dir, "spool", "%Lu", "Maildir"), filepath.Join(dir, "index"), filepath.Join(dir, "admin.sock"))
	path := filepath.Join(dir, "nfsimap.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return path, nil
}

// sample is one demo message: the folder ("" = INBOX), whether it is
// already read (cur/ with \Seen) and its text.
type sample struct {
	folder string
	seen   bool
	text   string
}

var samples = []sample{
	{"", false, "From: nfsimap <postmaster@localhost>\r\nTo: demo@localhost\r\n" +
		"Subject: Welcome to nfsimap\r\nDate: %[1]s\r\nMessage-ID: <welcome.%[2]d@localhost>\r\n\r\n" +
		"This message lives in a maildir on the demo spool.\r\n"},
	{"", true, "From: Alice <alice@example.org>\r\nTo: demo@localhost\r\n" +
		"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_Berlin?=\r\nDate: %[1]s\r\nMessage-ID: <alice.%[2]d@example.org>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo! The attachment is a tiny text file.\r\n" +
		"--b1\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n" +
		"some notes\r\n--b1--\r\n"},
	// Written with bare LF, as many delivery agents do: served as CRLF.
	{"", false, "From: Bob <bob@example.org>\nTo: demo@localhost\nSubject: Re: lunch?\nDate: %[1]s\n" +
		"Message-ID: <bob.%[2]d@example.org>\nIn-Reply-To: <alice.%[2]d@example.org>\n\nTuesday works for me.\n"},
	{"Archive", true, "From: Carol <carol@example.org>\r\nTo: demo@localhost\r\nSubject: Old news\r\n" +
		"Date: %[1]s\r\nMessage-ID: <carol.%[2]d@example.org>\r\n\r\nKept for the record.\r\n"},
	{"Archive", true, "From: Dave <dave@example.org>\r\nTo: demo@localhost\r\nSubject: Minutes\r\n" +
		"Date: %[1]s\r\nMessage-ID: <dave.%[2]d@example.org>\r\n\r\nNothing was decided.\r\n"},
}

// writeSamples delivers the demo messages the way an MTA would (tmp/, then
// rename), INBOX mail into new/ and already read mail into cur/.
func writeSamples(inbox string) error {
	now := time.Now()
	for i, m := range samples {
		dir := inbox
		if m.folder != "" {
			dir = filepath.Join(inbox, "."+m.folder)
			for _, d := range []string{"cur", "new", "tmp"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
					return fmt.Errorf("demo: %w", err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
		}
		date := now.Add(time.Duration(i-len(samples)) * time.Hour)
		text := fmt.Sprintf(m.text, date.Format(time.RFC1123Z), now.UnixNano())
		name := fmt.Sprintf("%d.M%dP%dQ%d.demo", now.Unix(), now.Nanosecond()/1000, os.Getpid(), i)
		dest := filepath.Join(dir, "new", name)
		if m.seen {
			dest = filepath.Join(dir, "cur", name+":2,S")
		}
		tmp := filepath.Join(dir, "tmp", name)
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := os.Rename(tmp, dest); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}
