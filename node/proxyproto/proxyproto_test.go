package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// v2 builds a version 2 header.
func v2(verCmd, famProto byte, body []byte) []byte {
	b := append([]byte{}, v2Signature...)
	b = append(b, verCmd, famProto, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func v2inet4(src, dst string, sp, dp uint16, tlvs []byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	body := append(append([]byte{}, s[:]...), d[:]...)
	body = binary.BigEndian.AppendUint16(body, sp)
	body = binary.BigEndian.AppendUint16(body, dp)
	return v2(0x21, 0x11, append(body, tlvs...))
}

func v2inet6(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	body := append(append([]byte{}, s[:]...), d[:]...)
	body = binary.BigEndian.AppendUint16(body, sp)
	body = binary.BigEndian.AppendUint16(body, dp)
	return v2(0x21, 0x21, body)
}

var ap = netip.MustParseAddrPort

func TestReadHeader(t *testing.T) {
	tlv := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c'} // PP2_TYPE_NOOP
	for _, tc := range []struct {
		name   string
		in     []byte
		want   *Header
		err    error
		noHead bool
		cut    bool // nothing follows the input
	}{
		{name: "v1 tcp4", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
			want: &Header{Version: 1, Command: CommandProxy, Source: ap("192.168.0.1:56324"), Destination: ap("192.168.0.11:443"), Len: 47}},
		{name: "v1 tcp6", in: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 993\r\n"),
			want: &Header{Version: 1, Command: CommandProxy, Source: ap("[2001:db8::1]:65535"), Destination: ap("[2001:db8::2]:993"), Len: 46}},
		{name: "v1 longest", in: []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			want: &Header{Version: 1, Command: CommandProxy, Source: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Destination: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Len: 104}},
		{name: "v1 unknown", in: []byte("PROXY UNKNOWN\r\n"), want: &Header{Version: 1, Command: CommandLocal, Len: 15}},
		{name: "v1 unknown with junk", in: []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), want: &Header{Version: 1, Command: CommandLocal, Len: 35}},
		{name: "v1 tcp4 with v6 address", in: []byte("PROXY TCP4 ::1 ::1 1 2\r\n"), err: ErrInvalidHeader},
		{name: "v1 tcp6 with v4 address", in: []byte("PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n"), err: ErrInvalidHeader},
		{name: "v1 bad port", in: []byte("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"), err: ErrInvalidHeader},
		{name: "v1 signed port", in: []byte("PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n"), err: ErrInvalidHeader},
		{name: "v1 two spaces", in: []byte("PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n"), err: ErrInvalidHeader},
		{name: "v1 missing field", in: []byte("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n"), err: ErrInvalidHeader},
		{name: "v1 udp", in: []byte("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), err: ErrInvalidHeader},
		{name: "v1 bare LF", in: []byte("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"), err: ErrInvalidHeader},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), err: ErrInvalidHeader},
		{name: "v1 too long", in: []byte("PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n"), err: ErrInvalidHeader},
		{name: "v2 inet", in: v2inet4("10.1.2.3", "10.0.0.1", 40000, 143, nil),
			want: &Header{Version: 2, Command: CommandProxy, Source: ap("10.1.2.3:40000"), Destination: ap("10.0.0.1:143"), Len: 28}},
		{name: "v2 inet with TLV", in: v2inet4("10.1.2.3", "10.0.0.1", 40000, 143, tlv),
			want: &Header{Version: 2, Command: CommandProxy, Source: ap("10.1.2.3:40000"), Destination: ap("10.0.0.1:143"), Len: 34}},
		{name: "v2 inet6", in: v2inet6("2001:db8::7", "2001:db8::1", 1, 993),
			want: &Header{Version: 2, Command: CommandProxy, Source: ap("[2001:db8::7]:1"), Destination: ap("[2001:db8::1]:993"), Len: 52}},
		{name: "v2 local", in: v2(0x20, 0x00, nil), want: &Header{Version: 2, Command: CommandLocal, Len: 16}},
		{name: "v2 local with addresses", in: v2(0x20, 0x11, make([]byte, 12)), want: &Header{Version: 2, Command: CommandLocal, Len: 28}},
		{name: "v2 unspec", in: v2(0x21, 0x00, nil), want: &Header{Version: 2, Command: CommandLocal, Len: 16}},
		{name: "v2 unix", in: v2(0x21, 0x31, make([]byte, 216)), want: &Header{Version: 2, Command: CommandLocal, Len: 232}},
		{name: "v2 unix short", in: v2(0x21, 0x31, make([]byte, 20)), err: ErrInvalidHeader},
		{name: "v2 version 3", in: v2(0x31, 0x11, make([]byte, 12)), err: ErrInvalidHeader},
		{name: "v2 command 2", in: v2(0x22, 0x11, make([]byte, 12)), err: ErrInvalidHeader},
		{name: "v2 family 4", in: v2(0x21, 0x41, make([]byte, 12)), err: ErrInvalidHeader},
		{name: "v2 dgram", in: v2(0x21, 0x12, make([]byte, 12)), err: ErrInvalidHeader},
		{name: "v2 short address", in: v2(0x21, 0x11, make([]byte, 11)), err: ErrInvalidHeader},
		{name: "v2 short inet6", in: v2(0x21, 0x21, make([]byte, 12)), err: ErrInvalidHeader},
		{name: "imap command", in: []byte("a001 LOGIN user pass\r\n"), err: ErrNoHeader, noHead: true},
		{name: "tls hello", in: []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x00, 0x00}, err: ErrNoHeader, noHead: true},
		{name: "empty", in: nil, err: ErrNoHeader},
		{name: "truncated v1", in: []byte("PROXY TCP4 1.2.3.4"), err: io.ErrUnexpectedEOF, cut: true},
		{name: "truncated v2", in: v2inet4("1.2.3.4", "1.2.3.4", 1, 2, nil)[:20], err: io.ErrUnexpectedEOF, cut: true},
		{name: "truncated v2 fixed part", in: v2inet4("1.2.3.4", "1.2.3.4", 1, 2, nil)[:14], err: io.ErrUnexpectedEOF, cut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := "* OK next bytes"
			if tc.cut {
				after = ""
			}
			r := bytes.NewReader(append(append([]byte{}, tc.in...), after...))
			h, rest, err := ReadHeader(r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if tc.noHead && !bytes.Equal(rest, tc.in[:sniffLen]) {
					t.Errorf("rest %q, want the %d bytes read", rest, sniffLen)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *h != *tc.want {
				t.Errorf("got %+v\nwant %+v", h, tc.want)
			}
			left, _ := io.ReadAll(r)
			if string(left) != after {
				t.Errorf("bytes after the header: %q, want %q (over-read)", left, after)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nabc"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 993\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2inet4("10.1.2.3", "10.0.0.1", 40000, 143, []byte{1, 0, 2, 'h', '2'}))
	f.Add(v2inet6("2001:db8::7", "2001:db8::1", 1, 993))
	f.Add(v2(0x20, 0x00, nil))
	f.Add(v2(0x21, 0x31, make([]byte, 216)))
	f.Add([]byte("a001 CAPABILITY\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, _, err := ReadHeader(r)
		consumed := len(data) - r.Len()
		if err != nil {
			return
		}
		// Exactly the header was read, and it parses again by itself.
		if consumed != h.Len {
			t.Fatalf("consumed %d bytes, header is %d", consumed, h.Len)
		}
		var again *Header
		if h.Version == 1 {
			again, err = ParseV1(data[:h.Len])
		} else {
			again, err = ParseV2(data[:h.Len])
		}
		if err != nil || *again != *h {
			t.Fatalf("reparse: %+v, %v", again, err)
		}
		if (h.Command == CommandProxy) != h.Source.IsValid() {
			t.Fatalf("command %v with source %v", h.Command, h.Source)
		}
	})
}

// serve starts a loopback listener wrapped with cfg; each accepted
// connection is sent to the returned channel.
func serve(t *testing.T, cfg Config) (addr string, conns <-chan net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(inner, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return inner.Addr().String(), ch
}

// dialFrom connects to addr from the local address src (a loopback IP).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func accept(t *testing.T, conns <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func write(t *testing.T, c net.Conn, parts ...[]byte) {
	t.Helper()
	for _, p := range parts {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

var trustLoopback1 = Config{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HeaderTimeout: 2 * time.Second}

func TestListenerTrusted(t *testing.T) {
	addr, conns := serve(t, trustLoopback1)
	for _, tc := range []struct {
		name   string
		parts  [][]byte
		remote string
	}{
		{"v1 with data in the same segment", [][]byte{[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 40001 993\r\nhello")}, "203.0.113.7:40001"},
		{"v1 split", [][]byte{[]byte("PROXY TCP6 2001:db8::9 2001"), []byte(":db8::1 5 143\r"), []byte("\nhello")}, "[2001:db8::9]:5"},
		{"v2 with TLV then data", [][]byte{append(v2inet4("198.51.100.4", "192.0.2.1", 1234, 143, []byte{0x04, 0, 1, 0}), "hello"...)}, "198.51.100.4:1234"},
		{"v2 split", [][]byte{v2inet6("2001:db8::5", "2001:db8::1", 7, 143)[:14], v2inet6("2001:db8::5", "2001:db8::1", 7, 143)[14:], []byte("hello")}, "[2001:db8::5]:7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := dialFrom(t, "127.0.0.1", addr)
			go func() {
				for _, p := range tc.parts {
					if _, err := client.Write(p); err != nil {
						return
					}
				}
			}()
			sc := accept(t, conns)
			pc, ok := sc.(*Conn)
			if !ok {
				t.Fatalf("trusted peer's conn is %T", sc)
			}
			if got := sc.RemoteAddr().String(); got != tc.remote {
				t.Errorf("RemoteAddr %s, want %s", got, tc.remote)
			}
			if got := readN(t, sc, 5); got != "hello" {
				t.Errorf("data %q", got)
			}
			h, err := pc.Header()
			if err != nil || h.Command != CommandProxy {
				t.Errorf("Header: %+v %v", h, err)
			}
			// The server can answer through the wrapped conn.
			write(t, sc, []byte("* OK\r\n"))
			if got := readN(t, client, 6); got != "* OK\r\n" {
				t.Errorf("reply %q", got)
			}
		})
	}
}

func TestListenerLocalCommand(t *testing.T) {
	addr, conns := serve(t, trustLoopback1)
	client := dialFrom(t, "127.0.0.1", addr)
	write(t, client, v2(0x20, 0x00, nil), []byte("x"))
	sc := accept(t, conns)
	if got, want := sc.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("LOCAL: RemoteAddr %s, want the peer %s", got, want)
	}
	if got := readN(t, sc, 1); got != "x" {
		t.Errorf("data %q", got)
	}
}

func TestListenerUntrustedUntouched(t *testing.T) {
	addr, conns := serve(t, trustLoopback1)
	client := dialFrom(t, "127.0.0.2", addr)
	const spoof = "PROXY TCP4 203.0.113.7 192.0.2.1 40001 993\r\n"
	write(t, client, []byte(spoof))
	sc := accept(t, conns)
	if _, ok := sc.(*Conn); ok {
		t.Fatal("untrusted peer was wrapped")
	}
	if got := sc.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.2" {
		t.Errorf("RemoteAddr %s", got)
	}
	if got := readN(t, sc, len(spoof)); got != spoof {
		t.Errorf("bytes changed: %q", got)
	}
}

func TestListenerMissingHeaderRejected(t *testing.T) {
	addr, conns := serve(t, trustLoopback1)
	client := dialFrom(t, "127.0.0.1", addr)
	write(t, client, []byte("a001 LOGIN x y\r\n"))
	sc := accept(t, conns)
	if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, ErrNoHeader) {
		t.Errorf("Read: %v, want ErrNoHeader", err)
	}
	// The connection was closed: the client sees EOF (or a reset).
	if err := client.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Read(make([]byte, 1)); err == nil {
		t.Errorf("client read %d bytes from a rejected connection", n)
	} else if errors.Is(err, errors.ErrUnsupported) || isTimeout(err) {
		t.Errorf("client read: %v", err)
	}
}

func TestListenerHeaderTimeout(t *testing.T) {
	cfg := trustLoopback1
	cfg.HeaderTimeout = 100 * time.Millisecond
	addr, conns := serve(t, cfg)
	dialFrom(t, "127.0.0.1", addr) // sends nothing
	sc := accept(t, conns).(*Conn)
	err := sc.Handshake()
	if !isTimeout(err) {
		t.Errorf("Handshake: %v, want a timeout", err)
	}
}

func TestListenerAllowMissing(t *testing.T) {
	cfg := trustLoopback1
	cfg.AllowMissing = true
	cfg.HeaderTimeout = 100 * time.Millisecond
	addr, conns := serve(t, cfg)

	// Silence: after HeaderTimeout the peer is taken as itself.
	c1 := dialFrom(t, "127.0.0.1", addr)
	s1 := accept(t, conns)
	if got, want := s1.RemoteAddr().String(), c1.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	write(t, c1, []byte("late"))
	if got := readN(t, s1, 4); got != "late" {
		t.Errorf("data %q", got)
	}

	// Other bytes: kept and served first.
	c2 := dialFrom(t, "127.0.0.1", addr)
	write(t, c2, []byte("a001 CAPABILITY\r\n"))
	s2 := accept(t, conns)
	if got := readN(t, s2, 17); got != "a001 CAPABILITY\r\n" {
		t.Errorf("data %q", got)
	}
	// The handshake restored "no deadline" for later reads.
	if err := s2.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	write(t, c2, []byte("z"))
	if got := readN(t, s2, 1); got != "z" {
		t.Errorf("data %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Error("empty Trusted accepted")
	}
	if err := (Config{Trusted: []netip.Prefix{{}}}).Validate(); err == nil {
		t.Error("zero prefix accepted")
	}
	if err := trustLoopback1.Validate(); err != nil {
		t.Error(err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestWrap(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	client := dialFrom(t, "127.0.0.1", inner.Addr().String())
	write(t, client, []byte("PROXY TCP4 192.0.2.9 192.0.2.1 9 143\r\n"))
	sc, err := inner.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	wc, err := Wrap(sc, trustLoopback1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := wc.RemoteAddr().String(); got != "192.0.2.9:9" {
		t.Errorf("RemoteAddr %s", got)
	}
	if _, err := Wrap(sc, Config{}, nil); err == nil {
		t.Error("empty config accepted")
	}
}
