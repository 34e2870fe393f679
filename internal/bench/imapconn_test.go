package bench

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "* OK hello\r\n", want: []string{"* OK hello"}},
		{in: "* OK bare lf\n* 3 EXISTS\r\n", want: []string{"* OK bare lf", "* 3 EXISTS"}},
		{in: "* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\na1 OK\r\n", want: []string{"* 1 FETCH (BODY[] {5}\r\nab\r\nc)", "a1 OK"}},
		{in: "* 1 FETCH (X {3+}\r\nabc Y {0}\r\n)\r\n", want: []string{"* 1 FETCH (X {3+}\r\nabc Y {0}\r\n)"}},
		{in: "* LIST () \".\" {x}\r\n", want: []string{"* LIST () \".\" {x}"}},
		{in: "* 1 FETCH (BODY[] {10}\r\nshort", err: true},
		{in: "* 1 FETCH (BODY[] {9999999999}\r\n", err: true},
		{in: "* OK no line end", err: true},
	} {
		r := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		var got []string
		var err error
		for {
			var line []byte
			line, err = ReadResponse(r)
			if err != nil {
				break
			}
			got = append(got, string(line))
		}
		if tc.err {
			if errors.Is(err, io.EOF) {
				t.Errorf("%q: clean EOF, want an error", tc.in)
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Errorf("%q: %v", tc.in, err)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"* OK hello\r\n", "* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\n", "{3+}\r\nabc\r\n",
		"* SORT 1 2 3\r\n", "+ idling\r\n", "a1 NO [ALERT] x\r\n", "{}\r\n", "{-1}\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(strings.NewReader(string(data)), 16)
		total := 0
		for {
			line, err := ReadResponse(r)
			if err != nil {
				break
			}
			total += len(line)
			if total > 2*len(data)+16 {
				t.Fatalf("read %d bytes of lines from %d bytes of input", total, len(data))
			}
		}
	})
}

// fakeServer answers a scripted IMAP dialogue on a real socket.
func fakeServer(t *testing.T, handle func(r *bufio.Reader, w io.Writer)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "* OK fake ready\r\n")
		handle(bufio.NewReader(c), c)
	}()
	return l.Addr().String()
}

func TestConnCommands(t *testing.T) {
	addr := fakeServer(t, func(r *bufio.Reader, w io.Writer) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, cmd, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch {
			case strings.HasPrefix(cmd, "LOGIN"):
				if cmd != `LOGIN "u\"1" "p\\w"` {
					io.WriteString(w, tag+" NO bad quoting: "+cmd+"\r\n")
					continue
				}
				io.WriteString(w, tag+" OK logged in\r\n")
			case cmd == "SELECT INBOX":
				io.WriteString(w, "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n"+tag+" OK [READ-WRITE] done\r\n")
			case cmd == "SORT (SUBJECT) UTF-8 ALL":
				io.WriteString(w, "* SORT 3 1 2\r\n"+tag+" OK sorted\r\n")
			case cmd == "IDLE":
				io.WriteString(w, "+ idling\r\n")
			case cmd == "LOGOUT":
				io.WriteString(w, "* BYE\r\n"+tag+" OK bye\r\n")
				return
			default:
				io.WriteString(w, tag+" BAD unknown\r\n")
			}
		}
	})
	c, err := Dial(addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(`u"1`, `p\w`); err != nil {
		t.Fatal(err)
	}
	lines, err := c.Command("SELECT INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if n := existsCount(lines); n != 3 {
		t.Errorf("EXISTS %d, want 3 (%q)", n, lines)
	}
	lines, err = c.Command("SORT (SUBJECT) UTF-8 ALL")
	if err != nil {
		t.Fatal(err)
	}
	if n, d := answerDigest(lines); n != 3 || d == "" {
		t.Errorf("SORT answer: %d numbers, digest %q", n, d)
	}
	if _, err := c.Command("FROB"); !errors.Is(err, ErrNotOK) {
		t.Errorf("FROB: %v, want ErrNotOK", err)
	}
	if err := c.Idle(); err != nil {
		t.Fatal(err)
	}
}

func TestTagged(t *testing.T) {
	for _, tc := range []struct {
		line, tag, status string
		ok                bool
	}{
		{"b1 OK done", "b1", "OK", true},
		{"b1 no [x] y", "b1", "NO", true},
		{"b12 OK done", "b1", "", false},
		{"* OK b1", "b1", "", false},
		{"b1", "b1", "", false},
	} {
		st, ok := tagged([]byte(tc.line), tc.tag)
		if st != tc.status || ok != tc.ok {
			t.Errorf("tagged(%q, %q) = %q %v", tc.line, tc.tag, st, ok)
		}
	}
}

func TestMessageKeysAndAnswers(t *testing.T) {
	lines := [][]byte{
		[]byte("* 2 FETCH (INTERNALDATE \"02-Jan-2024 09:00:00 +0000\" BODY[HEADER.FIELDS (MESSAGE-ID)] {28}\r\nMessage-ID: <b@x>\r\n\r\n)"),
		[]byte("* 1 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)] {24}\r\nMessage-Id:  <a@x>\r\n\r\n INTERNALDATE \" 2-Jan-2024 10:00:00 +0100\")"),
		[]byte("* 3 FETCH (INTERNALDATE \"02-Jan-2024 09:00:01 +0000\" BODY[HEADER.FIELDS (MESSAGE-ID)] {2}\r\n\r\n)"),
		[]byte("* 9 FETCH (INTERNALDATE \"02-Jan-2024 09:00:01 +0000\")"),
		[]byte("* OK x"),
	}
	keys, ids := messageKeys(lines, 4)
	want := []string{"t1704186000", "t1704186000", "t1704186001", "?4"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if strings.Join(ids, " ") != "<a@x> <b@x>  " {
		t.Errorf("ids %q", ids)
	}
	if got := withKeys("* THREAD (2 (1 3))(12)", keys); got != "* THREAD (t1704186000 (t1704186000 t1704186001))(12)" {
		t.Errorf("withKeys: %q", got)
	}
	if d := SameOrder(keys, keys); d != "" {
		t.Error(d)
	}
	if d := SameOrder(keys, []string{"t1704186000", "t1", "t1704186001", "?4"}); !strings.Contains(d, "sequence number 2") {
		t.Errorf("SameOrder: %q", d)
	}
	if d := DiffIDs([]string{"t1", "t2"}, []string{"<a>", "<b>"}, []string{"t2", "t1"}, []string{"", "<a>"}); !strings.Contains(d, "1 messages") || !strings.Contains(d, "t2") {
		t.Errorf("DiffIDs: %q", d)
	}
	if d := DiffAnswers("* SORT a b c d", "* SORT a b d c"); !strings.Contains(d, "word 4") {
		t.Errorf("DiffAnswers: %q", d)
	}
	if d := DiffAnswers("x", "x"); d != "" {
		t.Errorf("DiffAnswers of equal answers: %q", d)
	}
}
