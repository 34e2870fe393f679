package corpus

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode the non-UTF-8 samples
	"github.com/emersion/go-message/mail"
)

// tree reads every file under dir: relative path -> content and mtime.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[rel] = fi.ModTime().UTC().Format(time.RFC3339Nano) + "\n" + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	opt := DefaultOptions()
	opt.Seed = 42
	opt.Messages = 150
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	ma, err := Generate(a, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(b, opt); err != nil {
		t.Fatal(err)
	}
	ta, tb := tree(t, a), tree(t, b)
	if len(ta) != len(tb) {
		t.Fatalf("%d files vs %d", len(ta), len(tb))
	}
	for k, v := range ta {
		if tb[k] != v {
			t.Errorf("%s differs between two runs with one seed", k)
		}
	}
	opt.Seed = 43
	if _, err := Generate(c, opt); err != nil {
		t.Fatal(err)
	}
	same := 0
	for k, v := range tree(t, c) {
		if ta[k] == v && !strings.HasSuffix(k, "/") {
			same++
		}
	}
	if same > 2 {
		t.Errorf("%d files identical under another seed", same)
	}
	if len(ma.Messages) != 150 {
		t.Errorf("%d messages in the manifest", len(ma.Messages))
	}
}

func TestManifestAndLayout(t *testing.T) {
	dir := t.TempDir()
	opt := DefaultOptions()
	opt.Messages = 400
	m, err := Generate(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	names := map[string]bool{}
	var crlf, newCount, ufield, sfield, noID, loops int
	ids := map[string]bool{}
	for _, msg := range m.Messages {
		kinds[msg.Kind]++
		if names[msg.Name] {
			t.Errorf("duplicate name %s", msg.Name)
		}
		names[msg.Name] = true
		unique, info, _ := strings.Cut(msg.Name, ":")
		if unique == "" || strings.HasPrefix(unique, ".") || strings.Contains(unique, "/") {
			t.Errorf("bad maildir name %q", msg.Name)
		}
		if msg.Sub == "new" && info != "" {
			t.Errorf("new/ name with info: %q", msg.Name)
		}
		if msg.Sub == "cur" {
			if !strings.HasPrefix(info, "2,") {
				t.Errorf("cur/ name without :2,: %q", msg.Name)
			}
			fl, _, _ := strings.Cut(strings.TrimPrefix(info, "2,"), ",")
			if fl != msg.Flags {
				t.Errorf("%q: flags %q in manifest", msg.Name, msg.Flags)
			}
		}
		if strings.Contains(info, ",U") {
			ufield++
		}
		if strings.Contains(msg.Name, ",S=") {
			sfield++
			i := strings.Index(msg.Name, ",S=")
			v := msg.Name[i+3:]
			if j := strings.IndexAny(v, ",:"); j >= 0 {
				v = v[:j]
			}
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n != msg.Size {
				t.Errorf("%q: S=%s but size %d", msg.Name, v, msg.Size)
			}
		}
		if msg.Sub == "new" {
			newCount++
		}
		if msg.CRLF {
			crlf++
		}
		if msg.MessageID == "" {
			noID++
		} else {
			ids[msg.MessageID] = true
		}
		fi, err := os.Stat(filepath.Join(dir, msg.Path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != msg.Size || !fi.ModTime().Equal(msg.Date) {
			t.Errorf("%s: size %d mtime %v, manifest %d %v", msg.Path, fi.Size(), fi.ModTime(), msg.Size, msg.Date)
		}
	}
	refs := map[string][]string{}
	for _, msg := range m.Messages {
		refs[msg.MessageID] = strings.Fields(msg.References)
	}
	var selfRefs int
	for _, msg := range m.Messages {
		for _, r := range refs[msg.MessageID] {
			if r == msg.MessageID {
				selfRefs++
			}
			for _, back := range refs[r] {
				if back == msg.MessageID && r != msg.MessageID {
					loops++
				}
			}
		}
	}
	t.Logf("kinds %v; %d CRLF, %d in new/, %d with ,U, %d with ,S=, %d without Message-ID, %d self-references, %d messages in two-message loops",
		kinds, crlf, newCount, ufield, sfield, noID, selfRefs, loops)
	for _, k := range kinds {
		if k == 0 {
			t.Error("a kind is missing")
		}
	}
	if len(kinds) != 12 || crlf == 0 || newCount == 0 || ufield == 0 || sfield == 0 || noID == 0 || selfRefs == 0 || loops == 0 {
		t.Error("the corpus lacks variety (see the log line)")
	}
	for _, f := range m.Folders {
		if len(m.InFolder(f)) == 0 {
			t.Errorf("folder %s is empty", f)
		}
		if f != "INBOX" {
			if _, err := os.Stat(filepath.Join(FolderDir(dir, f), "maildirfolder")); err != nil {
				t.Error(err)
			}
		}
	}
	// No uidlist or other index files: the server under test makes them.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "dovecot") {
			t.Errorf("unexpected %s", path)
		}
		return nil
	})
}

// TestParses reads every well-formed message with go-message, walking all
// parts and decoding bodies, subjects and addresses.
func TestParses(t *testing.T) {
	dir := t.TempDir()
	opt := DefaultOptions()
	opt.Messages = 300
	m, err := Generate(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, msg := range m.Messages {
		data, err := os.ReadFile(filepath.Join(dir, msg.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !msg.Wellformed {
			continue
		}
		checked++
		e, err := message.Read(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s (%s): %v", msg.Path, msg.Kind, err)
			continue
		}
		h := mail.Header{Header: e.Header}
		if _, err := h.Subject(); err != nil {
			t.Errorf("%s: subject: %v", msg.Path, err)
		}
		if msg.Kind != "no-from" {
			if from, err := h.AddressList("From"); err != nil || len(from) != 1 {
				t.Errorf("%s: From %q: %v", msg.Path, h.Get("From"), err)
			}
		}
		if msg.Kind != "no-date" && msg.Kind != "bad-date" {
			// Some date styles have no seconds.
			if d, err := h.Date(); err != nil || msg.Date.Sub(d) < 0 || msg.Date.Sub(d) >= time.Minute {
				t.Errorf("%s: Date %q = %v, %v; want %v", msg.Path, h.Get("Date"), d, err, msg.Date)
			}
		}
		if id, err := h.MessageID(); msg.MessageID != "" && (err != nil || "<"+id+">" != msg.MessageID) {
			t.Errorf("%s: Message-ID %q, %v", msg.Path, id, err)
		}
		if err := walk(e, 0); err != nil {
			t.Errorf("%s (%s): %v", msg.Path, msg.Kind, err)
		}
	}
	if checked < 250 {
		t.Errorf("only %d well-formed messages", checked)
	}
}

func walk(e *message.Entity, depth int) error {
	if depth > 5 {
		return errors.New("too deep")
	}
	if mr := e.MultipartReader(); mr != nil {
		n := 0
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := walk(p, depth+1); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return errors.New("multipart without parts")
		}
		return nil
	}
	t, params, err := e.Header.ContentType()
	if err != nil && e.Header.Get("Content-Type") != "" {
		return err
	}
	if _, err := io.ReadAll(e.Body); err != nil {
		return err
	}
	if strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "application/") {
		if _, dp, err := e.Header.ContentDisposition(); err != nil || (dp["filename"] == "" && params["name"] == "") {
			return errors.New("attachment without a file name")
		}
	}
	return nil
}

func TestValidate(t *testing.T) {
	for _, o := range []Options{{Messages: -1}, {Folders: []string{"INBOX"}}, {Folders: []string{"a..b"}}, {Folders: []string{"a/b"}}, {Folders: []string{"x", "x"}}, {MaxAttachment: -1}} {
		if o.Validate() == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Error(err)
	}
}
