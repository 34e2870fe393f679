package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// ErrNotOK is wrapped by Conn.Command when the tagged reply is NO or BAD.
var ErrNotOK = errors.New("command not OK")

// maxLiteral bounds a literal in a server response (the bench never
// fetches message bodies, so anything bigger is a broken server).
const maxLiteral = 64 << 20

// maxLine bounds one response line without its literals.
const maxLine = 1 << 20

// Conn is a minimal IMAP client for the bench: it sends commands as raw
// text and returns the untagged response lines, so the bench measures the
// server and the wire, not a client library's parsing. Not safe for
// concurrent use.
type Conn struct {
	nc      net.Conn
	r       *bufio.Reader
	tag     int
	timeout time.Duration
}

// Dial connects to addr from the local address local (nil: the system's
// choice), reads the greeting and returns the connection. timeout bounds
// the dial and every later command.
func Dial(addr string, local *net.TCPAddr, timeout time.Duration) (*Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if local != nil {
		d.LocalAddr = local
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 4096), timeout: timeout}
	if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	line, err := ReadResponse(c.r)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("* OK")) && !bytes.HasPrefix(line, []byte("* PREAUTH")) {
		nc.Close()
		return nil, fmt.Errorf("greeting %q", line)
	}
	return c, nil
}

// NetConn returns the underlying connection (for its addresses).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection without LOGOUT.
func (c *Conn) Close() error { return c.nc.Close() }

// Login sends LOGIN with quoted user and password.
func (c *Conn) Login(user, password string) error {
	_, err := c.Command("LOGIN " + quote(user) + " " + quote(password))
	return err
}

// Logout sends LOGOUT and closes the connection.
func (c *Conn) Logout() error {
	_, err := c.Command("LOGOUT")
	cerr := c.nc.Close()
	if err != nil {
		return err
	}
	return cerr
}

// Command sends one command (without tag and CRLF) and reads responses up
// to its tagged reply. It returns the untagged and continuation lines
// (literals inline, without the final CRLF). A NO or BAD reply gives an
// error wrapping ErrNotOK.
func (c *Conn) Command(cmd string) ([][]byte, error) {
	c.tag++
	tag := "b" + strconv.Itoa(c.tag)
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c.nc, tag+" "+cmd+"\r\n"); err != nil {
		return nil, fmt.Errorf("%s: write: %w", firstWord(cmd), err)
	}
	var lines [][]byte
	for {
		line, err := ReadResponse(c.r)
		if err != nil {
			return lines, fmt.Errorf("%s: read: %w", firstWord(cmd), err)
		}
		status, ok := tagged(line, tag)
		if !ok {
			lines = append(lines, line)
			continue
		}
		if status != "OK" {
			return lines, fmt.Errorf("%s: %w: %s", firstWord(cmd), ErrNotOK, line)
		}
		return lines, nil
	}
}

// Idle sends IDLE and waits for the server's continuation. The connection
// then stays idle; the bench closes it without DONE.
func (c *Conn) Idle() error {
	c.tag++
	tag := "b" + strconv.Itoa(c.tag)
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(c.nc, tag+" IDLE\r\n"); err != nil {
		return fmt.Errorf("IDLE: write: %w", err)
	}
	for {
		line, err := ReadResponse(c.r)
		if err != nil {
			return fmt.Errorf("IDLE: read: %w", err)
		}
		if len(line) > 0 && line[0] == '+' {
			// No deadline while idle: the bench holds the connection.
			return c.nc.SetDeadline(time.Time{})
		}
		if status, ok := tagged(line, tag); ok {
			return fmt.Errorf("IDLE: %w: %s %s", ErrNotOK, status, line)
		}
	}
}

// tagged reports whether line is the tagged reply for tag, and its status
// word (OK, NO, BAD).
func tagged(line []byte, tag string) (string, bool) {
	if len(line) <= len(tag) || string(line[:len(tag)]) != tag || line[len(tag)] != ' ' {
		return "", false
	}
	rest := line[len(tag)+1:]
	if i := bytes.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	return string(bytes.ToUpper(rest)), true
}

// ReadResponse reads one response line from r: up to CRLF (or a bare LF),
// with any literals ("{N}" or "{N+}" at the end of a line followed by N
// bytes) read inline and the line continued after them. The returned
// line has no final line end. Lines longer than 1 MiB and literals larger
// than 64 MiB are errors.
func ReadResponse(r *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		part, err := readLine(r)
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
		if len(out) > maxLine {
			return nil, fmt.Errorf("response line longer than %d bytes", maxLine)
		}
		n, ok, err := literalSize(part)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, '\r', '\n')
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(r, out[start:]); err != nil {
			return nil, fmt.Errorf("literal of %d bytes: %w", n, err)
		}
	}
}

// readLine reads up to LF and strips CRLF or LF.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > maxLine {
				return nil, fmt.Errorf("response line longer than %d bytes", maxLine)
			}
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// literalSize reports whether line ends in a literal announcement and its
// size.
func literalSize(line []byte) (int, bool, error) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, nil
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, nil
	}
	digits := line[open+1 : len(line)-1]
	digits = bytes.TrimSuffix(digits, []byte("+"))
	if len(digits) == 0 {
		return 0, false, nil
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return 0, false, nil
		}
	}
	if len(digits) > 9 {
		return 0, false, fmt.Errorf("literal size %q too large", digits)
	}
	n, err := strconv.Atoi(string(digits))
	if err != nil {
		return 0, false, fmt.Errorf("literal size %q: %w", digits, err)
	}
	if n > maxLiteral {
		return 0, false, fmt.Errorf("literal of %d bytes is larger than %d", n, maxLiteral)
	}
	return n, true, nil
}

// quote makes an IMAP quoted string.
func quote(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func firstWord(s string) string {
	if i := bytes.IndexByte([]byte(s), ' '); i >= 0 {
		return s[:i]
	}
	return s
}
