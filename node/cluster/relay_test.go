package cluster

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/node/proxyproto"
)

// stopRelay runs copyResponses from a pipe to a pipe; the returned
// functions write the peer's bytes, stop the relay as the relay's stop
// does (flag, interrupt the read), and collect the result.
type relayRun struct {
	peerW    net.Conn
	peerR    net.Conn
	stopping atomic.Bool
	done     chan relayResult
	got      chan []byte
}

type relayResult struct {
	n   int64
	err error
}

func startRelay(t *testing.T, pending string) *relayRun {
	t.Helper()
	peerR, peerW := net.Pipe()
	clientW, clientR := net.Pipe()
	t.Cleanup(func() { peerR.Close(); peerW.Close(); clientR.Close() })
	r := &relayRun{peerW: peerW, peerR: peerR, done: make(chan relayResult, 1), got: make(chan []byte, 1)}
	br := bufio.NewReader(io.MultiReader(strings.NewReader(pending), peerR))
	if pending != "" {
		br.Peek(len(pending)) // the login reply's reader holds these
	}
	go func() {
		n, err := copyResponses(clientW, br, peerR, &r.stopping, newRelayBufs())
		clientW.Close()
		r.done <- relayResult{n, err}
	}()
	go func() {
		b, _ := io.ReadAll(clientR)
		r.got <- b
	}()
	return r
}

func (r *relayRun) write(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(r.peerW, s); err != nil {
		t.Fatal(err)
	}
}

func (r *relayRun) stop() {
	r.stopping.Store(true)
	r.peerR.SetReadDeadline(time.Now())
}

func (r *relayRun) wait(t *testing.T) (relayResult, string) {
	t.Helper()
	select {
	case res := <-r.done:
		return res, string(<-r.got)
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not end")
	}
	panic("unreachable")
}

// TestRelayByeAtResponseBoundary: a relay asked to stop in the middle of a
// response with a literal finishes that response and then says BYE, never
// inside the literal.
func TestRelayByeAtResponseBoundary(t *testing.T) {
	r := startRelay(t, "")
	first := "* 1 FETCH (BODY[] {10}\r\n0123\r\n"
	rest := "5678)\r\n"
	r.write(t, first)
	r.stop()
	r.write(t, rest)
	res, got := r.wait(t)
	if !errors.Is(res.err, errStopped) {
		t.Fatalf("copyResponses: %v, want errStopped", res.err)
	}
	if res.n != int64(len(first)+len(rest)) {
		t.Errorf("copied %d bytes, want %d", res.n, len(first)+len(rest))
	}
	if want := first + rest + byeLine; got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
}

// TestRelayByeNotRightAfterLiteral: the end of a literal's body is not
// the end of the response: stopped there, the relay waits for the rest of
// the line.
func TestRelayByeNotRightAfterLiteral(t *testing.T) {
	r := startRelay(t, "")
	first := "* 1 FETCH (BODY[] {4}\r\nabcd"
	r.write(t, first)
	r.stop()
	// The relay must still be reading: give it the rest of the response.
	rest := ")\r\n"
	r.write(t, rest)
	res, got := r.wait(t)
	if !errors.Is(res.err, errStopped) {
		t.Fatalf("copyResponses: %v, want errStopped", res.err)
	}
	if want := first + rest + byeLine; got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
}

// TestRelayByeCutsAtFirstBoundary: responses read together with the one
// being finished when the relay stops are not relayed: BYE comes after
// the first response that ends.
func TestRelayByeCutsAtFirstBoundary(t *testing.T) {
	r := startRelay(t, "")
	r.write(t, "* 1 FETCH (BODY[] {3}\r\n")
	r.stop()
	r.write(t, "abc)\r\nA1 OK done\r\n")
	res, got := r.wait(t)
	if !errors.Is(res.err, errStopped) {
		t.Fatalf("copyResponses: %v, want errStopped", res.err)
	}
	if want := "* 1 FETCH (BODY[] {3}\r\nabc)\r\n" + byeLine; got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
}

// TestRelayPendingAndLongLines: bytes the login reader holds go first; a
// line far longer than any buffer and literals of every size pass
// unchanged; EOF from the peer is an orderly end.
func TestRelayPendingAndLongLines(t *testing.T) {
	pending := "* OK [ALERT] pending\r\n"
	r := startRelay(t, pending)
	var want strings.Builder
	want.WriteString(pending)
	long := "* OK " + strings.Repeat("x", 300<<10) + "\r\n"
	body := strings.Repeat("y", 200<<10)
	stream := long + "* 1 FETCH (BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + ")\r\nA1 OK done\r\n"
	want.WriteString(stream)
	go func() {
		io.WriteString(r.peerW, stream)
		r.peerW.Close()
	}()
	res, got := r.wait(t)
	if res.err != nil {
		t.Fatalf("copyResponses: %v", res.err)
	}
	if got != want.String() {
		t.Fatalf("client got %d bytes, want %d (same content: %v)", len(got), want.Len(), got == want.String())
	}
	if res.n != int64(want.Len()) {
		t.Errorf("counted %d bytes, want %d", res.n, want.Len())
	}
}

// TestRelayStopAtBoundaryWhileIdle: a relay waiting between responses says
// BYE at once.
func TestRelayStopAtBoundaryWhileIdle(t *testing.T) {
	r := startRelay(t, "")
	r.write(t, "* 3 EXISTS\r\n")
	r.stop()
	res, got := r.wait(t)
	if !errors.Is(res.err, errStopped) || got != "* 3 EXISTS\r\n"+byeLine {
		t.Fatalf("copyResponses: %v, client got %q", res.err, got)
	}
}

// refBoundaries is a plain reading of the stream, line by line, as the
// reference for responseEnds: the offsets at which a response ends.
func refBoundaries(b []byte) []int {
	var out []int
	i := 0
	for i < len(b) {
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			break
		}
		line := b[i : i+nl+1]
		i += nl + 1
		n, ok := refLiteral(line)
		if !ok {
			out = append(out, i)
			continue
		}
		if n > int64(len(b)-i) {
			break
		}
		i += int(n) // the response goes on after the body
	}
	return out
}

// refLiteral reports whether line announces a literal, "{n}" or "{n+}"
// before its CRLF or LF, and n.
func refLiteral(line []byte) (int64, bool) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	if !strings.HasSuffix(s, "}") {
		return 0, false
	}
	k := strings.LastIndexByte(s, '{')
	if k < 0 {
		return 0, false
	}
	digits := strings.TrimSuffix(s[k+1:len(s)-1], "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil
}

// boundariesOf feeds b to a responseEnds in pieces of the given sizes
// (cycled; a size 0 means 1) and lists the offsets where it is at a
// boundary after a byte, using untilBoundary the way a stopped relay does.
func boundariesOf(b []byte, sizes []int) []int {
	var (
		r   responseEnds
		out []int
		off int
	)
	for k := 0; off < len(b); k++ {
		size := 1
		if len(sizes) > 0 {
			size = max(1, sizes[k%len(sizes)])
		}
		piece := b[off:min(len(b), off+size)]
		for len(piece) > 0 {
			if r.atBoundary() {
				// Step past the boundary: feed one byte.
				r.feed(piece[:1])
				piece = piece[1:]
				off++
				if r.atBoundary() {
					out = append(out, off)
				}
				continue
			}
			cut := r.untilBoundary(piece)
			if cut < 0 {
				off += len(piece)
				break
			}
			off += cut
			piece = piece[cut:]
			out = append(out, off)
		}
	}
	return out
}

func TestResponseEnds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int // offsets where responses end
	}{
		{"* OK done\r\n", []int{11}},
		{"* 1 FETCH (BODY[] {10}\r\n0123456789)\r\nA1 OK\r\n", []int{37, 44}},
		{"* 1 FETCH (BODY[] {3+}\r\nabc)\r\n", []int{30}},
		{"* 1 FETCH (BODY[] {0}\r\n)\r\n", []int{26}},       // an empty literal: the line goes on
		{"* 1 FETCH (X {2}\nab)\n", []int{21}},              // bare LF
		{"* 1 FETCH (BODY[] {3}\r\n\r\n\n)\r\n", []int{29}}, // line feeds inside a literal
		{"* 1 FETCH (B {5}\r\n{5}\r\n)\r\n", []int{26}},     // the body looks like an announcement
		{"* OK {x}\r\n* OK {-3}\r\n", []int{10, 21}},        // not literals
		{"* OK {+3}\r\n* OK {3++}\r\n", []int{11, 23}},      // not literals
		{"* OK {3}}\r\n* OK {3} \r\n", []int{11, 22}},       // not at the end
		{"* OK {3}\r\r\n", []int{11}},                       // two CRs: not an announcement
		{"* OK {99999999999999999999999}\r\nx", []int{32}},  // too big
		{"* OK a{1{2}\r\nxy\r\n", []int{17}},                // the last '{' counts
		{"* OK {0003}\r\nabc\r\n", []int{18}},               // leading zeros
		{"* 1 FETCH (A {1}\r\nx B {2}\r\nyz)\r\nA2 OK\r\n", []int{32, 39}},
	} {
		if got := refBoundaries([]byte(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("reference on %q: %v, want %v", tc.in, got, tc.want)
		}
		for _, sizes := range [][]int{nil, {1}, {2}, {3, 1}, {7}, {1000}} {
			if got := boundariesOf([]byte(tc.in), sizes); !slices.Equal(got, tc.want) {
				t.Errorf("responseEnds on %q in pieces %v: %v, want %v", tc.in, sizes, got, tc.want)
			}
		}
	}
}

// FuzzResponseEnds: for any stream cut into pieces anyhow, responseEnds
// finds the response ends the plain line-by-line reading finds.
func FuzzResponseEnds(f *testing.F) {
	for _, s := range []string{
		"* OK done\r\n",
		"* 1 FETCH (BODY[] {10}\r\n0123456789)\r\nA1 OK\r\n",
		"* 1 FETCH (BODY[] {3+}\r\nabc)\r\n",
		"* 1 FETCH (BODY[] {0}\r\n)\r\n",
		"* OK {99999999999999999999}\r\n",
		"* 1 FETCH (A {1}\r\nx B {2}\r\nyz)\r\n",
		"{5}\n{5}\n",
		"}{\r\n",
	} {
		f.Add([]byte(s), []byte{1, 2, 3})
		f.Add([]byte(s), []byte{})
	}
	f.Fuzz(func(t *testing.T, stream []byte, cuts []byte) {
		sizes := make([]int, len(cuts))
		for i, c := range cuts {
			sizes[i] = int(c)
		}
		want := refBoundaries(stream)
		if got := boundariesOf(stream, sizes); !slices.Equal(got, want) {
			t.Fatalf("pieces %v: ends %v, want %v", sizes, got, want)
		}
		var r responseEnds
		r.feed(stream)
		atEnd := len(stream) == 0 || (len(want) > 0 && want[len(want)-1] == len(stream))
		if r.atBoundary() != atEnd {
			t.Fatalf("at a boundary after the whole stream: %v, want %v", r.atBoundary(), atEnd)
		}
	})
}

// replayConn is a peer whose reads return chunk (in pieces when a read's
// buffer is smaller), left times, then EOF; and a
// client whose writes go nowhere. Only what copyResponses uses works.
type replayConn struct {
	net.Conn
	chunk []byte
	off   int // where the next read starts in chunk
	left  int // chunks still to read
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	k := copy(p, c.chunk[c.off:])
	if c.off += k; c.off == len(c.chunk) {
		c.off = 0
		c.left--
	}
	return k, nil
}

func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkCopyResponses measures the relay's own work from peer to
// client (no sockets): FETCH responses with and without literals, in
// reads of the sizes a busy peer gives.
func BenchmarkCopyResponses(b *testing.B) {
	var flags, bodies strings.Builder
	for i := range 32 {
		flags.WriteString("* " + strconv.Itoa(i+1) + " FETCH (UID " + strconv.Itoa(i+1) + " FLAGS (\\Seen))\r\n")
	}
	flags.WriteString("f1 OK FETCH completed\r\n")
	for i := range 8 {
		body := strings.Repeat("x", 1900) + "\r\n"
		bodies.WriteString("* " + strconv.Itoa(i+1) + " FETCH (UID " + strconv.Itoa(i+1) + " BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + ")\r\n")
	}
	bodies.WriteString("f2 OK FETCH completed\r\n")
	for _, bc := range []struct {
		name  string
		chunk string
	}{
		{"flags-1KiB", flags.String()[:1024]},
		{"flags-all", flags.String()},
		{"bodies-16KiB", bodies.String()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.chunk)))
			b.ReportAllocs()
			peer := &replayConn{chunk: []byte(bc.chunk), left: b.N}
			var stopping atomic.Bool
			b.ResetTimer()
			n, err := copyResponses(&replayConn{}, bufio.NewReader(peer), peer, &stopping, newRelayBufs())
			if err != nil || n != int64(b.N)*int64(len(bc.chunk)) {
				b.Fatalf("copied %d bytes (%v)", n, err)
			}
		})
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestCopyRequests: the bytes the front's reader holds go to the peer
// first, then the client's socket is read directly (through a PROXY
// protocol connection too), in order, until the client half-closes.
func TestCopyRequests(t *testing.T) {
	for _, withHeader := range []bool{false, true} {
		clientEnd, frontEnd := tcpPair(t)
		peerEnd, peerFar := tcpPair(t)
		var client net.Conn = frontEnd
		if withHeader {
			pc, err := proxyproto.Wrap(frontEnd, proxyproto.Config{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			client = pc
			io.WriteString(clientEnd, "PROXY TCP4 192.0.2.1 192.0.2.2 1234 143\r\n")
		}
		// The front read the login and a pipelined command with it.
		io.WriteString(clientEnd, "a LOGIN u p\r\nb NOOP\r\n")
		br := bufio.NewReaderSize(client, 4096)
		if l, err := br.ReadString('\n'); err != nil || l != "a LOGIN u p\r\n" {
			t.Fatalf("login line %q (%v)", l, err)
		}
		if br.Buffered() == 0 {
			// Both lines came in one read on loopback: wait for them.
			br.Peek(len("b NOOP\r\n"))
		}
		if got := rawConn(client); got != frontEnd {
			t.Fatalf("rawConn(%T) = %v, want the socket", client, got)
		}
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(peerFar)
			got <- b
		}()
		done := make(chan relayResult, 1)
		go func() {
			n, err := copyRequests(peerEnd, br, client)
			peerEnd.CloseWrite()
			done <- relayResult{n, err}
		}()
		rest := "c SELECT INBOX\r\n" + strings.Repeat("d NOOP\r\n", 5000)
		io.WriteString(clientEnd, rest)
		clientEnd.CloseWrite()
		res := <-done
		want := "b NOOP\r\n" + rest
		if res.err != nil || res.n != int64(len(want)) {
			t.Fatalf("header %v: copyRequests = %d, %v; want %d bytes", withHeader, res.n, res.err, len(want))
		}
		if b := <-got; string(b) != want {
			t.Fatalf("header %v: the peer got %d bytes, different from the %d sent", withHeader, len(b), len(want))
		}
	}
}

// TestRawConnOnlyWhenSafe: no direct socket under TLS or under a PROXY
// protocol connection that may hold bytes it read ahead.
func TestRawConnOnlyWhenSafe(t *testing.T) {
	_, s := tcpPair(t)
	if rawConn(tls.Server(s, &tls.Config{})) != nil {
		t.Error("rawConn under TLS")
	}
	c2, s2 := tcpPair(t)
	pc, err := proxyproto.Wrap(s2, proxyproto.Config{
		Trusted:       []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AllowMissing:  true,
		HeaderTimeout: 5 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c2, "a LOGIN u p\r\n") // no header: kept as pending bytes
	if rawConn(pc) != nil {
		t.Error("rawConn under a PROXY protocol connection without header")
	}
}
