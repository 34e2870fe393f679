package maildir

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Layout says where users' mail lives on the spool. The templates may use:
//
//	%u  the user name as given ("alice@example.com")
//	%n  the local part (before '@'; the whole name when there is no '@')
//	%d  the domain (after '@'; empty when there is none)
//	%h  the user's home directory
//	%%  a '%'
//
// like Dovecot, a width takes the first characters: %1u is the first
// character, %2u the first two; an offset picks from further on: %1.1u is
// the second character. Case is kept as in the user name (Dovecot's rule);
// add L to lower-case: %1Lu, %Ld. So "/var/spool/mail/%1Lu/%2Lu/%Lu"
// gives "/var/spool/mail/a/al/alice" for "Alice".
//
// Every expanded path must be absolute and clean: a user name whose
// expansion would climb out of the template ("..", "/", NUL, an empty path
// level) is refused with ErrInvalidName.
type Layout struct {
	// Inbox is the template of the INBOX maildir's path, for example
	// "/var/spool/mail/%1u/%2u/%u". Required.
	Inbox string
	// Root is the template of the folder root, the directory that holds
	// the Maildir++ folders (".Sent", ".Archive.2024") and the
	// subscriptions file, for example "/home/%1u/%u/Mail". "" means the
	// folders live inside the INBOX maildir (classic Maildir++).
	Root string
}

// DefaultLayout is classic Maildir++ in ~/Maildir.
func DefaultLayout() Layout { return Layout{Inbox: "%h/Maildir"} }

// Validate checks the templates' syntax and that they give absolute paths.
func (l Layout) Validate() error {
	if l.Inbox == "" {
		return fmt.Errorf("maildir: layout: Inbox template is empty")
	}
	u := User{Name: "user@example.com", Home: "/home/user"}
	for _, t := range []string{l.Inbox, l.Root} {
		if t == "" {
			continue
		}
		if _, err := expandTemplate(t, u); err != nil {
			return fmt.Errorf("maildir: layout template %q: %w", t, err)
		}
	}
	return nil
}

// User names whose mail a Layout places.
type User struct {
	// Name is the login name (%u).
	Name string
	// Home is the home directory (%h, and "~" in Mail); "" if unknown.
	Home string
	// Mail overrides the layout for this user (the passwd-file's mail= or
	// userdb_mail= field), in Dovecot's mail_location form:
	// "[maildir:]<root>[:INBOX=<path>][:KEY=value...]". "~/" means Home,
	// templates are expanded. Without INBOX= the INBOX is the root
	// (classic Maildir++). INDEX= is ignored (our index is local); LAYOUT
	// other than maildir++, CONTROL= and a format other than maildir are
	// refused. "" means use the Layout.
	Mail string
}

// Paths are one user's expanded locations.
type Paths struct {
	// Inbox is the INBOX maildir (holding new/ cur/ tmp/).
	Inbox string
	// Root holds the Maildir++ folder directories and the subscriptions
	// file. Equal to Inbox for classic Maildir++.
	Root string
}

// Paths expands the layout (or the user's Mail override) for u.
func (l Layout) Paths(u User) (Paths, error) {
	if err := checkUserName(u.Name); err != nil {
		return Paths{}, err
	}
	if u.Mail != "" {
		return mailLocationPaths(u)
	}
	inbox, err := expandTemplate(l.Inbox, u)
	if err != nil {
		return Paths{}, err
	}
	root := inbox
	if l.Root != "" {
		if root, err = expandTemplate(l.Root, u); err != nil {
			return Paths{}, err
		}
	}
	return Paths{Inbox: inbox, Root: root}, nil
}

func checkUserName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty user name", ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: user name %q", ErrInvalidName, name)
	case strings.ContainsAny(name, "/\x00\r\n"):
		return fmt.Errorf("%w: user name %q contains '/' or a control character", ErrInvalidName, name)
	}
	return nil
}

func mailLocationPaths(u User) (Paths, error) {
	loc := u.Mail
	if format, rest, ok := strings.Cut(loc, ":"); ok && !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "~") {
		if format != "maildir" {
			return Paths{}, fmt.Errorf("%w: mail location %q: only maildir is supported", ErrInvalidName, loc)
		}
		loc = rest
	}
	parts := strings.Split(loc, ":")
	rootT := parts[0]
	inboxT := ""
	for _, p := range parts[1:] {
		key, val, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "INBOX":
			inboxT = val
		case "INDEX", "INDEXPVT", "VOLATILEDIR", "UTF8", "FULLDIRNAME", "DIRNAME":
			// Index placement is a local matter; nothing to do.
		case "LAYOUT":
			if !strings.EqualFold(val, "maildir++") {
				return Paths{}, fmt.Errorf("%w: mail location %q: only LAYOUT=maildir++ is supported", ErrInvalidName, u.Mail)
			}
		default:
			return Paths{}, fmt.Errorf("%w: mail location %q: %s= is not supported", ErrInvalidName, u.Mail, key)
		}
	}
	expand := func(t string) (string, error) {
		if t == "~" || strings.HasPrefix(t, "~/") {
			if u.Home == "" {
				return "", fmt.Errorf("%w: mail location %q uses ~ but the user has no home", ErrInvalidName, u.Mail)
			}
			t = "%h" + t[1:]
		}
		return expandTemplate(t, u)
	}
	root, err := expand(rootT)
	if err != nil {
		return Paths{}, err
	}
	inbox := root
	if inboxT != "" {
		if inbox, err = expand(inboxT); err != nil {
			return Paths{}, err
		}
	}
	return Paths{Inbox: inbox, Root: root}, nil
}

// expandTemplate expands t for u and checks that the result is a clean
// absolute path.
func expandTemplate(t string, u User) (string, error) {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		// %[offset.][width][L]var
		num := func() (int, bool) {
			start := i
			v := 0
			for i < len(t) && t[i] >= '0' && t[i] <= '9' && i-start < 6 {
				v = v*10 + int(t[i]-'0')
				i++
			}
			return v, i > start
		}
		offset, width := 0, -1
		if v, ok := num(); ok {
			width = v
			if i < len(t) && t[i] == '.' {
				i++
				offset = v
				w, ok := num()
				if !ok {
					return "", fmt.Errorf("%w: template %q: width expected after '.'", ErrInvalidName, t)
				}
				width = w
			}
		}
		lower := false
		if i < len(t) && t[i] == 'L' {
			lower = true
			i++
		}
		if i >= len(t) {
			return "", fmt.Errorf("%w: template %q ends inside a %%-variable", ErrInvalidName, t)
		}
		var val string
		switch t[i] {
		case 'u':
			val = u.Name
		case 'n':
			val, _, _ = strings.Cut(u.Name, "@")
		case 'd':
			if _, d, ok := strings.Cut(u.Name, "@"); ok {
				val = d
			}
		case 'h':
			val = u.Home
			if val == "" {
				return "", fmt.Errorf("%w: template %q uses %%h but the user has no home", ErrInvalidName, t)
			}
		case '%':
			b.WriteByte('%')
			continue
		default:
			return "", fmt.Errorf("%w: template %q: unknown variable %%%c", ErrInvalidName, t, t[i])
		}
		r := []rune(val)
		if offset > len(r) {
			offset = len(r)
		}
		r = r[offset:]
		if width >= 0 && width < len(r) {
			r = r[:width]
		}
		val = string(r)
		if lower {
			val = strings.ToLower(val)
		}
		b.WriteString(val)
	}
	p := b.String()
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsAny(p, "\x00\r\n") || p == "/" {
		return "", fmt.Errorf("%w: template %q gives %q for user %q: not a clean absolute path", ErrInvalidName, t, p, u.Name)
	}
	return p, nil
}
