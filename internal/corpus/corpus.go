// Package corpus generates a maildir spool for tests: deterministic for a
// seed, with the kinds of mail a real spool holds and a server must survive
// (MIME structures, encoded words in several charsets, broken headers, LF
// and CRLF files, threads with holes and loops, maildir names written by
// procmail, Dovecot, Courier and UW-IMAP, Maildir++ folders).
//
// It writes messages only: no dovecot-uidlist, keywords or subscriptions
// files, which are the job of the server under test.
package corpus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options say what to generate. The zero value is valid: 100 messages in
// INBOX only, seed 0.
type Options struct {
	// Seed: the same seed and options give the same spool, byte for byte
	// (file names, contents and mtimes).
	Seed int64
	// Messages is the number of messages over all folders; 0 = 100.
	Messages int
	// Folders are Maildir++ folders besides INBOX, as IMAP names with '.'
	// as separator ("Sent", "Archive.2024" become ".Sent", ".Archive.2024").
	// nil = INBOX only. About 60% of the messages go to INBOX.
	Folders []string
	// MaxAttachment is the size in bytes of the largest attachment; 0 =
	// 256 KiB. Attachment sizes are spread log-uniformly from 512 bytes.
	MaxAttachment int
	// Start is the date of the oldest message; the zero value means
	// 2024-01-02 09:00 UTC. Messages follow at random intervals of minutes
	// to hours; each file's mtime is its message's date.
	Start time.Time
}

// DefaultOptions returns 100 messages in INBOX, Sent and Archive.2024.
func DefaultOptions() Options {
	return Options{
		Seed:          1,
		Messages:      100,
		Folders:       []string{"Sent", "Archive.2024"},
		MaxAttachment: 256 << 10,
	}
}

// Validate reports options Generate cannot use.
func (o Options) Validate() error {
	var errs []error
	if o.Messages < 0 {
		errs = append(errs, fmt.Errorf("messages %d is negative", o.Messages))
	}
	if o.MaxAttachment < 0 {
		errs = append(errs, fmt.Errorf("max attachment %d is negative", o.MaxAttachment))
	}
	seen := map[string]bool{}
	for _, f := range o.Folders {
		if err := checkFolder(f); err != nil {
			errs = append(errs, err)
		}
		if seen[f] {
			errs = append(errs, fmt.Errorf("folder %q listed twice", f))
		}
		seen[f] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("corpus: invalid options: %w", err)
	}
	return nil
}

func checkFolder(f string) error {
	if strings.EqualFold(f, "INBOX") {
		return fmt.Errorf("folder %q: INBOX is always there", f)
	}
	for _, part := range strings.Split(f, ".") {
		if part == "" || strings.ContainsAny(part, "/\x00\r\n") {
			return fmt.Errorf("folder %q: bad Maildir++ name", f)
		}
	}
	return nil
}

// Message describes one generated message.
type Message struct {
	// Folder is "INBOX" or the Maildir++ folder name ("Sent", "Archive.2024").
	Folder string
	// Sub is "new" or "cur".
	Sub string
	// Name is the file name in Sub.
	Name string
	// Path is the file's path relative to the spool directory.
	Path string
	// MessageID is the Message-ID header with its angle brackets; "" when
	// the message has none.
	MessageID string
	// InReplyTo and References are the header values as written ("" when
	// absent).
	InReplyTo, References string
	// Flags are the maildir flag letters after ":2," (sorted, without
	// other comma fields); "" for messages in new/.
	Flags string
	// Size is the file size in bytes.
	Size int64
	// Date is the file's mtime, and the Date header when it has a valid one.
	Date time.Time
	// Kind says what was generated, for example "plain", "alternative",
	// "mixed", "forward", "no-date", "bad-date", "no-from", "header-only",
	// "junk".
	Kind string
	// CRLF is true for files with CRLF line ends (the rest have LF only).
	CRLF bool
	// Wellformed is true when the message is valid MIME that a parser
	// (go-message) must read with all its parts; false for the broken kinds
	// that have no valid structure.
	Wellformed bool
}

// Manifest lists what Generate wrote, in generation order (oldest first).
type Manifest struct {
	// Dir is the spool directory given to Generate.
	Dir string
	// Folders are "INBOX" and Options.Folders, in that order.
	Folders  []string
	Messages []Message
}

// InFolder returns the messages of one folder, oldest first.
func (m *Manifest) InFolder(folder string) []Message {
	var out []Message
	for _, msg := range m.Messages {
		if msg.Folder == folder {
			out = append(out, msg)
		}
	}
	return out
}

// FolderDir returns the maildir directory of a folder under the spool dir.
func FolderDir(dir, folder string) string {
	if folder == "INBOX" {
		return dir
	}
	return filepath.Join(dir, "."+folder)
}

// Generate writes a maildir spool into dir (created if needed): INBOX at
// dir itself, each folder as dir/.NAME with a "maildirfolder" file.
func Generate(dir string, opt Options) (*Manifest, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if opt.Messages == 0 {
		opt.Messages = 100
	}
	if opt.MaxAttachment == 0 {
		opt.MaxAttachment = 256 << 10
	}
	if opt.Start.IsZero() {
		opt.Start = time.Date(2024, 1, 2, 9, 0, 0, 0, time.UTC)
	}
	folders := append([]string{"INBOX"}, opt.Folders...)
	for _, f := range folders {
		fd := FolderDir(dir, f)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(fd, sub), 0o755); err != nil {
				return nil, fmt.Errorf("corpus: %w", err)
			}
		}
		if f != "INBOX" {
			mf := filepath.Join(fd, "maildirfolder")
			if err := os.WriteFile(mf, nil, 0o644); err != nil {
				return nil, fmt.Errorf("corpus: %w", err)
			}
			if err := os.Chtimes(mf, opt.Start, opt.Start); err != nil {
				return nil, fmt.Errorf("corpus: %w", err)
			}
		}
	}
	g := &generator{
		r:   rand.New(rand.NewPCG(uint64(opt.Seed), uint64(opt.Seed)^0x9e3779b97f4a7c15)),
		opt: opt,
	}
	m := &Manifest{Dir: dir, Folders: folders}
	date := opt.Start
	for i := 0; i < opt.Messages; i++ {
		folder := "INBOX"
		if len(folders) > 1 && g.r.IntN(10) >= 6 {
			folder = folders[1+g.r.IntN(len(folders)-1)]
		}
		msg, data := g.message(i, date)
		msg.Folder = folder
		msg.Sub, msg.Name, msg.Flags = g.fileName(i, date, len(data))
		msg.Path = filepath.Join(strings.TrimPrefix(FolderDir("", folder), "/"), msg.Sub, msg.Name)
		msg.Size = int64(len(data))
		full := filepath.Join(dir, msg.Path)
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		if err := os.Chtimes(full, date, date); err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		m.Messages = append(m.Messages, msg)
		date = date.Add(time.Duration(2+g.r.IntN(300)) * time.Minute).Add(time.Duration(g.r.IntN(60)) * time.Second)
	}
	return m, nil
}

// fileName picks a maildir name the way various delivery agents and
// servers write them. It returns the subdirectory, the name and the flags.
func (g *generator) fileName(i int, date time.Time, size int) (sub, name, flags string) {
	r := g.r
	host := []string{"mx1.example.net", "mail.example.org", "deliver-3"}[r.IntN(3)]
	secs := date.Unix()
	usec := i*1000 + r.IntN(1000) // unique per message
	pid := 1000 + r.IntN(60000)
	if r.IntN(4) == 0 {
		// Fresh delivery, still in new/: procmail's "TIME.PID_N.HOST" or
		// Dovecot's "TIME.MuPp.HOST,S=size".
		if r.IntN(2) == 0 {
			return "new", fmt.Sprintf("%d.%d_%d.%s", secs, pid, i, host), ""
		}
		return "new", fmt.Sprintf("%d.M%dP%d.%s,S=%d", secs, usec, pid, host, size), ""
	}
	flags = g.flags()
	switch k := r.IntN(20); {
	case k < 8: // Courier / Dovecot: size in the unique part
		name = fmt.Sprintf("%d.M%dP%d.%s,S=%d:2,%s", secs, usec, pid, host, size, flags)
	case k < 11: // Dovecot with virtual size
		name = fmt.Sprintf("%d.M%dP%d.%s,S=%d,W=%d:2,%s", secs, usec, pid, host, size, size+size/40, flags)
	case k < 14: // procmail delivery later seen by a client
		name = fmt.Sprintf("%d.%d_%d.%s:2,%s", secs, pid, i, host, flags)
	case k < 17: // UW-IMAP's UID field after the flags
		name = fmt.Sprintf("%d.M%dP%d.%s:2,%s,U%d", secs, usec, pid, host, flags, i+1)
	case k < 18: // Courier's size field after the flags
		name = fmt.Sprintf("%d.M%dP%d.%s:2,%s,S=%d", secs, usec, pid, host, flags, size)
	default: // old qmail style: TIME.PID.HOST
		name = fmt.Sprintf("%d.%d.%s:2,%s", secs, pid*100+i%100, host, flags)
	}
	return "cur", name, flags
}

// flags returns a sorted set of maildir flags, with now and then Dovecot
// keyword letters (a, b, c).
func (g *generator) flags() string {
	r := g.r
	var b strings.Builder
	if r.IntN(12) == 0 {
		b.WriteByte('D')
	}
	if r.IntN(6) == 0 {
		b.WriteByte('F')
	}
	if r.IntN(15) == 0 {
		b.WriteByte('P')
	}
	if r.IntN(5) == 0 {
		b.WriteByte('R')
	}
	if r.IntN(10) < 7 {
		b.WriteByte('S')
	}
	if r.IntN(25) == 0 {
		b.WriteByte('T')
	}
	if r.IntN(10) == 0 {
		b.WriteByte('a')
	}
	if r.IntN(20) == 0 {
		b.WriteByte('b')
	}
	return b.String()
}
