package maildir

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayoutPaths(t *testing.T) {
	split := Layout{Inbox: "/var/spool/mail/%1Lu/%2Lu/%Lu", Root: "/home/%1u/%u/Mail"}
	classic := Layout{Inbox: "/srv/mail/%d/%n/Maildir"}
	tests := []struct {
		l    Layout
		u    User
		want Paths
		bad  bool
	}{
		{l: split, u: User{Name: "Alice"}, want: Paths{Inbox: "/var/spool/mail/a/al/alice", Root: "/home/A/Alice/Mail"}},
		{l: classic, u: User{Name: "bob@example.com"}, want: Paths{Inbox: "/srv/mail/example.com/bob/Maildir", Root: "/srv/mail/example.com/bob/Maildir"}},
		{l: Layout{Inbox: "/m/%1.1u/%u"}, u: User{Name: "bob"}, want: Paths{Inbox: "/m/o/bob", Root: "/m/o/bob"}},
		{l: Layout{Inbox: "/m/%5u/x%%"}, u: User{Name: "ab"}, want: Paths{Inbox: "/m/ab/x%", Root: "/m/ab/x%"}},
		{l: DefaultLayout(), u: User{Name: "c", Home: "/home/c"}, want: Paths{Inbox: "/home/c/Maildir", Root: "/home/c/Maildir"}},
		// Per-user override in Dovecot's mail_location form.
		{l: split, u: User{Name: "d", Home: "/home/d", Mail: "maildir:~/Maildir"}, want: Paths{Inbox: "/home/d/Maildir", Root: "/home/d/Maildir"}},
		{l: split, u: User{Name: "d", Home: "/home/d", Mail: "maildir:~/Mail:INBOX=/var/mail/%u:INDEX=/var/idx/%u"}, want: Paths{Inbox: "/var/mail/d", Root: "/home/d/Mail"}},
		{l: split, u: User{Name: "d", Mail: "/data/d/Maildir"}, want: Paths{Inbox: "/data/d/Maildir", Root: "/data/d/Maildir"}},
		{l: split, u: User{Name: "d", Mail: "mbox:~/mail"}, bad: true},
		{l: split, u: User{Name: "d", Mail: "maildir:~/Maildir"}, bad: true},     // no home
		{l: split, u: User{Name: "d", Mail: "maildir:/x:CONTROL=/y"}, bad: true}, // would move the uidlist
		{l: split, u: User{Name: "d", Mail: "maildir:/x/../etc"}, bad: true},
		// Escapes.
		{l: split, u: User{Name: ""}, bad: true},
		{l: split, u: User{Name: ".."}, bad: true},
		{l: split, u: User{Name: "a/../../etc"}, bad: true},
		{l: split, u: User{Name: "a\x00b"}, bad: true},
		{l: split, u: User{Name: ".x"}, bad: true}, // %1u would be "."
		{l: classic, u: User{Name: "nodomain"}, bad: true},
		{l: Layout{Inbox: "relative/%u"}, u: User{Name: "a"}, bad: true},
		{l: Layout{Inbox: "/m/%u"}, u: User{Name: "a\nb"}, bad: true},
	}
	for _, tc := range tests {
		got, err := tc.l.Paths(tc.u)
		if tc.bad {
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("%+v %+v: got %+v, %v; want ErrInvalidName", tc.l, tc.u, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v %+v: got %+v, %v; want %+v", tc.l, tc.u, got, err, tc.want)
		}
	}
}

func TestLayoutValidate(t *testing.T) {
	for _, l := range []Layout{{}, {Inbox: "/m/%x"}, {Inbox: "/m/%"}, {Inbox: "m/%u"}, {Inbox: "/m/%u", Root: "/r/%1."}} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v: no error", l)
		}
	}
	for _, l := range []Layout{DefaultLayout(), {Inbox: "/var/spool/mail/%1u/%2u/%u", Root: "/home/%1u/%u/Mail"}} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	good := map[string]string{"INBOX": "INBOX", "inbox": "INBOX", "Inbox.Sub": "INBOX.Sub", "Sent": "Sent", "Archive.2024": "Archive.2024", "a b&-": "a b&-"}
	for in, want := range good {
		if got, err := CanonicalName(in); err != nil || got != want {
			t.Errorf("CanonicalName(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", ".", "..", ".a", "a.", "a..b", "a/b", "../x", "/etc", "a\x00", "a\r\nb"} {
		if _, err := CanonicalName(in); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CanonicalName(%q) err = %v", in, err)
		}
	}
}

// FuzzLayoutPaths: whatever the user name and mail location (both come
// from outside: the login and the passwd-file), an accepted result is a
// clean absolute path, and a layout's paths stay under its fixed prefix.
func FuzzLayoutPaths(f *testing.F) {
	f.Add("alice", "", "/home/alice")
	f.Add("bob@example.com", "maildir:~/Maildir:INBOX=/var/mail/%u", "/home/bob")
	f.Add("..", "", "")
	f.Add("a/../../b", "maildir:/x/%u", "/h")
	f.Add(".x", "/data/%1u/%u", "/h")
	f.Fuzz(func(t *testing.T, user, mail, home string) {
		l := Layout{Inbox: "/var/spool/mail/%1Lu/%2Lu/%Lu", Root: "/home/%d/%n/Mail"}
		p, err := l.Paths(User{Name: user, Home: home, Mail: mail})
		if err != nil {
			return
		}
		for _, x := range []string{p.Inbox, p.Root} {
			if !filepath.IsAbs(x) || filepath.Clean(x) != x {
				t.Fatalf("user %q mail %q: unclean path %q", user, mail, x)
			}
		}
		if mail == "" && (!strings.HasPrefix(p.Inbox, "/var/spool/mail/") || !strings.HasPrefix(p.Root, "/home/")) {
			t.Fatalf("user %q escaped: %+v", user, p)
		}
	})
}
