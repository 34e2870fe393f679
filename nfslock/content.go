package nfslock

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// maxContent is the most we read of a lock file. Ours are far shorter;
// anything longer is foreign garbage.
const maxContent = 512

// owner is what a lock file says about who holds it.
type owner struct {
	PID   int
	Host  string
	Nonce string // "" for locks written by Dovecot ("PID:HOST")
}

// formatContent renders the content of our lock files: "PID:HOST:NONCE\n".
// PID and host come first and in Dovecot's order.
func formatContent(o owner) []byte {
	return []byte(strconv.Itoa(o.PID) + ":" + o.Host + ":" + o.Nonce + "\n")
}

// parseContent reads the owner out of a lock file's content. It accepts ours
// ("PID:HOST:NONCE\n") and Dovecot's ("PID:HOST", with or without the
// newline). It reports false for anything else: such a lock is foreign and
// can only be broken by age.
func parseContent(b []byte) (owner, bool) {
	if len(b) == 0 || len(b) > maxContent {
		return owner{}, false
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	fields := strings.Split(s, ":")
	if len(fields) != 2 && len(fields) != 3 {
		return owner{}, false
	}
	pid, ok := parsePID(fields[0])
	if !ok {
		return owner{}, false
	}
	if checkHost(fields[1]) != nil {
		return owner{}, false
	}
	o := owner{PID: pid, Host: fields[1]}
	if len(fields) == 3 {
		if !validNonce(fields[2]) {
			return owner{}, false
		}
		o.Nonce = fields[2]
	}
	return o, true
}

// parsePID accepts a positive decimal pid without sign or leading zeros.
func parsePID(s string) (int, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// validNonce accepts 1 to 64 ASCII letters and digits.
func validNonce(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

var errBadHost = errors.New("nfslock: bad host name")

// checkHost accepts a host name that can go into a lock file's content and
// into a file name: 1 to 255 printable ASCII characters, none of them
// ':', '/' or a space.
func checkHost(h string) error {
	if h == "" || len(h) > 255 {
		return fmt.Errorf("%w: %q: must be 1 to 255 characters", errBadHost, h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '/' {
			return fmt.Errorf("%w: %q: only printable ASCII without ':', '/' and spaces", errBadHost, h)
		}
	}
	return nil
}
