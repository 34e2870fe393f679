package difftest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client is a minimal IMAP client that keeps responses as parsed values,
// for comparing two servers' answers. Not safe for concurrent use.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	tag     int
	timeout time.Duration
}

// Response is one untagged response.
type Response struct {
	// Num is the number in "* 3 FETCH": 0 when the response has none.
	Num uint32
	// Name is the response name, upper-cased ("FETCH", "SEARCH", "SORT").
	Name string
	// Data holds the values after the name.
	Data []Value
	// Raw is the whole response as received, without the final CRLF.
	Raw []byte
}

// StatusError is a tagged NO or BAD answer.
type StatusError struct {
	Command string
	Line    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("difftest: %q answered %q", e.Command, e.Line)
}

// maxLiteral bounds one literal in a response.
const maxLiteral = 64 << 20

// Dial connects to addr and reads the greeting. timeout applies to each
// command (0 = one minute).
func Dial(addr string, timeout time.Duration) (*Client, error) {
	if timeout == 0 {
		timeout = time.Minute
	}
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("difftest: dial %s: %w", addr, err)
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), timeout: timeout}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("difftest: %w", err)
	}
	greeting, err := c.readResponse()
	if err != nil {
		conn.Close()
		return nil, err
	}
	if !bytes.HasPrefix(greeting, []byte("* OK")) && !bytes.HasPrefix(greeting, []byte("* PREAUTH")) {
		conn.Close()
		return nil, fmt.Errorf("difftest: greeting %q", greeting)
	}
	return c, nil
}

// Close logs out and closes the connection.
func (c *Client) Close() error {
	_, _ = c.Command("LOGOUT")
	return c.conn.Close()
}

// Login sends LOGIN with quoted arguments.
func (c *Client) Login(user, password string) error {
	_, err := c.Command("LOGIN " + quote(user) + " " + quote(password))
	return err
}

// Select selects a mailbox read-write.
func (c *Client) Select(mailbox string) error {
	_, err := c.Command("SELECT " + quote(mailbox))
	return err
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Command sends one command (without tag and final CRLF) and returns the
// untagged responses. The command may hold synchronizing literals written
// as on the wire ("{5}\r\nhello"): Command waits for the server's "+"
// before sending each literal's bytes. A tagged NO or BAD is returned as a
// *StatusError together with the responses.
func (c *Client) Command(cmd string) ([]Response, error) {
	c.tag++
	tag := "d" + strconv.Itoa(c.tag)
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, fmt.Errorf("difftest: %w", err)
	}
	pieces := splitLiterals(tag + " " + cmd + "\r\n")
	var out []Response
	for i, piece := range pieces {
		if _, err := io.WriteString(c.conn, piece); err != nil {
			return nil, fmt.Errorf("difftest: send %q: %w", cmd, err)
		}
		last := i == len(pieces)-1
		for {
			raw, err := c.readResponse()
			if err != nil {
				return out, fmt.Errorf("difftest: reading the answer to %q: %w", cmd, err)
			}
			if rest, ok := bytes.CutPrefix(raw, []byte(tag+" ")); ok {
				if bytes.HasPrefix(bytes.ToUpper(rest), []byte("OK")) && last {
					return out, nil
				}
				return out, &StatusError{Command: cmd, Line: string(raw)}
			}
			if bytes.HasPrefix(raw, []byte("+")) {
				if last {
					return out, fmt.Errorf("difftest: unexpected continuation %q to %q", raw, cmd)
				}
				break // send the literal
			}
			resp, err := ParseResponse(raw)
			if err != nil {
				return out, fmt.Errorf("difftest: answer to %q: %w", cmd, err)
			}
			out = append(out, resp)
		}
	}
	return out, nil
}

// splitLiterals cuts a command after each synchronizing literal header
// "{N}\r\n", so the literal's bytes start the next piece.
func splitLiterals(cmd string) []string {
	var pieces []string
	start, pos := 0, 0
	for {
		i := strings.Index(cmd[pos:], "}\r\n")
		if i < 0 {
			break
		}
		i += pos
		open := strings.LastIndexByte(cmd[pos:i], '{')
		if open < 0 {
			pos = i + 3
			continue
		}
		open += pos
		n, err := strconv.Atoi(cmd[open+1 : i])
		if err != nil || n < 0 || i+3+n > len(cmd) {
			pos = i + 3
			continue
		}
		pieces = append(pieces, cmd[start:i+3])
		start = i + 3
		pos = i + 3 + n // the literal's bytes go with what follows them
	}
	return append(pieces, cmd[start:])
}

// Literal writes s as a synchronizing literal for Command.
func Literal(s string) string {
	return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
}

// readResponse reads one response line with its literals, without the
// final CRLF.
func (c *Client) readResponse() ([]byte, error) {
	var buf []byte
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		buf = append(buf, line...)
		n, ok := literalSize(line)
		if !ok {
			return bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r")), nil
		}
		if n > maxLiteral {
			return nil, fmt.Errorf("literal of %d bytes is too big", n)
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, buf[start:]); err != nil {
			return nil, err
		}
	}
}

// literalSize reports whether line ends with "{N}\r\n" and returns N.
func literalSize(line []byte) (int, bool) {
	line = bytes.TrimSuffix(line, []byte("\r\n"))
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(line[open+1 : len(line)-1]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// ParseResponse parses an untagged response "* [N] NAME values...", with
// literals inline as on the wire. Status responses (OK, NO, BAD, BYE,
// PREAUTH) keep their text unparsed in Data as one Atom.
func ParseResponse(raw []byte) (Response, error) {
	resp := Response{Raw: raw}
	rest, ok := bytes.CutPrefix(raw, []byte("* "))
	if !ok {
		return resp, fmt.Errorf("%w: not an untagged response: %.80q", ErrSyntax, raw)
	}
	word, rest, _ := bytes.Cut(rest, []byte(" "))
	if n, err := strconv.ParseUint(string(word), 10, 32); err == nil {
		resp.Num = uint32(n)
		word, rest, _ = bytes.Cut(rest, []byte(" "))
	}
	resp.Name = strings.ToUpper(string(word))
	if resp.Name == "" {
		return resp, fmt.Errorf("%w: response without a name: %.80q", ErrSyntax, raw)
	}
	switch resp.Name {
	case "OK", "NO", "BAD", "BYE", "PREAUTH", "CAPABILITY", "FLAGS", "LIST", "LSUB", "STATUS", "ENABLED", "ID", "NAMESPACE":
		resp.Data = []Value{{Kind: Atom, Str: string(rest)}}
		return resp, nil
	}
	vals, err := ParseValues(rest)
	if err != nil {
		return resp, fmt.Errorf("%s response: %w", resp.Name, err)
	}
	resp.Data = vals
	return resp, nil
}

// ErrNoFetch is returned by FetchItems for a response that is not FETCH.
var ErrNoFetch = errors.New("difftest: not a FETCH response")

// FetchItems turns a FETCH response's list into item name -> value. Item
// names are upper-cased and stripped of double quotes (a header name in
// BODY[HEADER.FIELDS ("FROM")] may be quoted or not); "BODY.PEEK" never
// appears in answers.
func FetchItems(resp Response) (map[string]Value, error) {
	if resp.Name != "FETCH" || len(resp.Data) != 1 || resp.Data[0].Kind != List {
		return nil, fmt.Errorf("%w: %.120q", ErrNoFetch, resp.Raw)
	}
	l := resp.Data[0].List
	if len(l)%2 != 0 {
		return nil, fmt.Errorf("%w: odd item list in %.120q", ErrSyntax, resp.Raw)
	}
	items := make(map[string]Value, len(l)/2)
	for i := 0; i < len(l); i += 2 {
		if l[i].Kind != Atom {
			return nil, fmt.Errorf("%w: item name %s in %.120q", ErrSyntax, l[i], resp.Raw)
		}
		items[strings.ReplaceAll(strings.ToUpper(l[i].Str), `"`, "")] = l[i+1]
	}
	return items, nil
}
