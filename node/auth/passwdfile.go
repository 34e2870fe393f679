package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The passwd-file format, as Dovecot reads it:
//
//	user:password:uid:gid:(gecos):home:(shell):extra_fields
//
// Fields are separated by ':'; everything after the seventh ':' is the
// extra fields, a space-separated list of key=value (or bare key) that may
// itself contain ':' (userdb_mail=maildir:~/Maildir). Empty lines and
// lines starting with '#' or ':' are skipped. Only the user name is
// required. A password of the libpam-pwdfile form "hash[NN]" is read as
// {CRYPT}hash, or {PLAIN-MD5}hash for [34].

// maxLineLen bounds one passwd-file line; a longer line is a bad line.
const maxLineLen = 64 << 10

// Entry is one user read from a passwd-file.
type Entry struct {
	User User
	// Password is the password field as written ("{SCHEME}hash", a bare
	// hash in the default scheme, or "" for none); HasPassword tells an
	// empty field from a missing one.
	Password    string
	HasPassword bool
	// Line is the 1-based line number in the file.
	Line int
}

// LineError is a line of a passwd-file that was skipped.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrBadLine is wrapped by the errors of skipped lines.
var ErrBadLine = errors.New("auth: bad passwd-file line")

// ParsePasswdFile reads a passwd-file. Bad lines (a bad uid or gid, a
// duplicate user, white space, a control character or invalid UTF-8 in a
// name, an over-long line) are returned as LineErrors and skipped; the
// other users are kept. The error
// result is only for a failing reader. Numeric uid and gid are taken as
// they are; a name in those fields is looked up in the system's user and
// group databases, as Dovecot does.
func ParsePasswdFile(r io.Reader) ([]Entry, []*LineError, error) {
	br := bufio.NewReaderSize(r, 4096)
	var (
		entries []Entry
		bad     []*LineError
		seen    = make(map[string]int)
		lineNo  int
	)
	for {
		line, tooLong, err := readLine(br)
		if err == io.EOF && line == nil {
			break
		}
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("auth: reading passwd-file: %w", err)
		}
		lineNo++
		if tooLong {
			bad = append(bad, &LineError{Line: lineNo, Err: fmt.Errorf("%w: longer than %d bytes", ErrBadLine, maxLineLen)})
			continue
		}
		e, skip, perr := parseLine(string(line))
		switch {
		case skip:
		case perr != nil:
			bad = append(bad, &LineError{Line: lineNo, Err: perr})
		default:
			if first, dup := seen[e.User.Name]; dup {
				bad = append(bad, &LineError{Line: lineNo, Err: fmt.Errorf("%w: user %q already defined on line %d", ErrBadLine, e.User.Name, first)})
				break
			}
			seen[e.User.Name] = lineNo
			e.Line = lineNo
			entries = append(entries, e)
		}
		if err == io.EOF {
			break
		}
	}
	return entries, bad, nil
}

// readLine returns the next line without its "\n" or "\r\n". A line longer
// than maxLineLen is consumed and reported with tooLong.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLineLen+2 {
			tooLong = true
		} else {
			buf = append(buf, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return trimEOL(buf), tooLong, io.EOF
		case err != nil:
			return nil, false, err
		}
		return trimEOL(buf), tooLong, nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// parseLine parses one line; skip is set for blank lines and comments.
func parseLine(line string) (e Entry, skip bool, err error) {
	if strings.TrimSpace(line) == "" || line[0] == '#' || line[0] == ':' {
		return e, true, nil
	}
	fields := strings.SplitN(line, ":", 8)
	name := fields[0]
	if !utf8.ValidString(name) {
		return e, false, fmt.Errorf("%w: user name is not valid UTF-8", ErrBadLine)
	}
	if strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' || r == '\t' }) >= 0 {
		return e, false, fmt.Errorf("%w: user name %q has white space or control characters", ErrBadLine, name)
	}
	u := User{Name: name, UID: -1, GID: -1}
	if len(fields) > 1 {
		e.Password, e.HasPassword = pamPwdfileCompat(fields[1]), true
	}
	if len(fields) > 2 && fields[2] != "" {
		if u.UID, err = parseID(fields[2], false); err != nil {
			return e, false, fmt.Errorf("%w: user %q: %w", ErrBadLine, name, err)
		}
	}
	if len(fields) > 3 && fields[3] != "" {
		if u.GID, err = parseID(fields[3], true); err != nil {
			return e, false, fmt.Errorf("%w: user %q: %w", ErrBadLine, name, err)
		}
	}
	// fields[4] is gecos and fields[6] the shell: ignored.
	if len(fields) > 5 {
		u.Home = fields[5]
	}
	if len(fields) > 7 {
		u.Extra = parseExtra(fields[7])
		if m, ok := u.Extra["userdb_mail"]; ok {
			u.Mail = m
		} else if m, ok := u.Extra["mail"]; ok {
			u.Mail = m
		}
	}
	e.User = u
	return e, false, nil
}

// pamPwdfileCompat turns libpam-pwdfile's "hash[NN]" into a {SCHEME}
// form: [34] is an MD5 hex digest, anything else crypt(3).
func pamPwdfileCompat(pass string) string {
	n := len(pass)
	if n > 4 && pass[0] != '{' && pass[0] != '$' && pass[n-1] == ']' && pass[n-4] == '[' {
		if pass[n-3:n-1] == "34" {
			return "{PLAIN-MD5}" + pass[:n-4]
		}
		return "{CRYPT}" + pass[:n-4]
	}
	return pass
}

// parseID parses a uid or gid: a positive number, or a system user or
// group name. 0 (root) is refused, as Dovecot does.
func parseID(s string, group bool) (int, error) {
	what := "uid"
	if group {
		what = "gid"
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 31)
		if err != nil {
			return 0, fmt.Errorf("invalid %s %q", what, s)
		}
		if n == 0 {
			return 0, fmt.Errorf("%s 0 is not allowed", what)
		}
		return int(n), nil
	}
	var idText string
	if group {
		g, err := user.LookupGroup(s)
		if err != nil {
			return 0, fmt.Errorf("unknown group %q: %w", s, err)
		}
		idText = g.Gid
	} else {
		u, err := user.Lookup(s)
		if err != nil {
			return 0, fmt.Errorf("unknown user %q: %w", s, err)
		}
		idText = u.Uid
	}
	n, err := strconv.Atoi(idText)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q resolves to %q, not allowed", what, s, idText)
	}
	return n, nil
}

// parseExtra splits the extra fields: space-separated key=value, a bare
// key has the value "". A later duplicate key replaces an earlier one.
func parseExtra(s string) map[string]string {
	words := strings.Fields(s)
	if len(words) == 0 {
		return nil
	}
	m := make(map[string]string, len(words))
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		if k == "" {
			continue
		}
		m[k] = v
	}
	return m
}
