// Package proxyproto reads the HAProxy PROXY protocol (versions 1 and 2)
// that load balancers put in front of a client connection to pass on the
// client's address.
//
// Only peers in Config.Trusted may send the header; connections from other
// peers are handed over untouched. The header is read with exact reads, so
// no byte of the client's own stream is consumed by this package: the
// returned connection can be wrapped in TLS or a bufio.Reader as usual.
//
// Specification: "The PROXY protocol, Versions 1 & 2" (haproxy.org,
// doc/proxy-protocol.txt).
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Command says what a header means.
type Command int

const (
	// CommandProxy: the connection was relayed for the client in
	// Header.Source.
	CommandProxy Command = iota
	// CommandLocal: the proxy opened the connection itself (a health
	// check, for example); the real peer address applies. Version 1's
	// "PROXY UNKNOWN" and version 2 headers with an unspecified or UNIX
	// address family are reported as CommandLocal too, since there is no
	// IP address to use.
	CommandLocal
)

func (c Command) String() string {
	if c == CommandProxy {
		return "PROXY"
	}
	return "LOCAL"
}

// Header is a parsed PROXY protocol header.
type Header struct {
	Version int // 1 or 2
	Command Command
	// Source is the client's address and port, Destination the address
	// it connected to (on the proxy). Both are the zero AddrPort unless
	// Command is CommandProxy.
	Source, Destination netip.AddrPort
	// Len is the header's length on the wire, TLVs included.
	Len int
}

// Errors returned while reading a header; test them with errors.Is.
var (
	// ErrNoHeader: the peer sent something that is not a PROXY header.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrInvalidHeader: the header is malformed or unsupported.
	ErrInvalidHeader = errors.New("proxyproto: invalid PROXY protocol header")
)

// v2Signature starts every version 2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	v1Prefix = "PROXY "
	// v1MaxLen is the longest version 1 line, CRLF included.
	v1MaxLen = 107
	// sniffLen is what is read first: no header is shorter (the shortest
	// is "PROXY UNKNOWN\r\n", 15 bytes), so it never reads past one.
	sniffLen = 12
)

// ReadHeader reads one PROXY protocol header from r and nothing more: it
// reads exactly the header's bytes (the 12-byte signature, then a version
// 2 header's announced length, or a version 1 line a few bytes at a time
// until its CRLF). When the first bytes are not a header it returns
// ErrNoHeader together with the bytes it consumed, so a caller can still
// serve them.
func ReadHeader(r io.Reader) (*Header, []byte, error) {
	buf := make([]byte, sniffLen, 16)
	if n, err := io.ReadFull(r, buf); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: connection closed", ErrNoHeader)
		}
		return nil, buf[:n], fmt.Errorf("proxyproto: reading header: %w", err)
	}
	switch {
	case bytes.Equal(buf, v2Signature):
		h, err := readV2(r, buf)
		return h, nil, err
	case string(buf[:len(v1Prefix)]) == v1Prefix:
		h, err := readV1(r, buf)
		return h, nil, err
	}
	return nil, buf, ErrNoHeader
}

// readV1 reads the rest of a version 1 line; buf holds its first bytes.
func readV1(r io.Reader, buf []byte) (*Header, error) {
	line := make([]byte, len(buf), v1MaxLen)
	copy(line, buf)
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return nil, fmt.Errorf("%w: bare LF in version 1 line", ErrInvalidHeader)
		}
		// At least "\r\n" is still to come, or "\n" after a '\r'.
		need := 2
		if line[len(line)-1] == '\r' {
			need = 1
		}
		if len(line)+need > v1MaxLen {
			return nil, fmt.Errorf("%w: version 1 line longer than %d bytes", ErrInvalidHeader, v1MaxLen)
		}
		n, err := io.ReadFull(r, line[len(line):len(line)+need])
		line = line[:len(line)+n]
		if err != nil {
			return nil, fmt.Errorf("proxyproto: reading version 1 header: %w", midHeader(err))
		}
	}
	h, err := ParseV1(line)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// ParseV1 parses a complete version 1 line, CRLF included.
func ParseV1(line []byte) (*Header, error) {
	if len(line) > v1MaxLen || !bytes.HasPrefix(line, []byte(v1Prefix)) || !bytes.HasSuffix(line, []byte("\r\n")) {
		return nil, fmt.Errorf("%w: not a version 1 line", ErrInvalidHeader)
	}
	body := string(line[len(v1Prefix) : len(line)-2])
	if strings.ContainsAny(body, "\r\n") {
		return nil, fmt.Errorf("%w: CR or LF inside version 1 line", ErrInvalidHeader)
	}
	h := &Header{Version: 1, Len: len(line)}
	if body == "UNKNOWN" || strings.HasPrefix(body, "UNKNOWN ") {
		// The rest of the line is to be ignored.
		h.Command = CommandLocal
		return h, nil
	}
	f := strings.Split(body, " ")
	if len(f) != 5 || (f[0] != "TCP4" && f[0] != "TCP6") {
		return nil, fmt.Errorf("%w: version 1 line %q", ErrInvalidHeader, body)
	}
	src, err1 := parseV1Addr(f[1], f[0] == "TCP4")
	dst, err2 := parseV1Addr(f[2], f[0] == "TCP4")
	sp, err3 := parseV1Port(f[3])
	dp, err4 := parseV1Port(f[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("%w: version 1 line %q: %w", ErrInvalidHeader, body, err)
	}
	h.Source = netip.AddrPortFrom(src, sp)
	h.Destination = netip.AddrPortFrom(dst, dp)
	return h, nil
}

func parseV1Addr(s string, v4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" || v4 != a.Is4() {
		return netip.Addr{}, fmt.Errorf("address %q does not match the protocol", s)
	}
	return a, nil
}

func parseV1Port(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad port %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

// midHeader turns io.EOF into io.ErrUnexpectedEOF: the stream ended
// inside a header.
func midHeader(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readV2 reads the rest of a version 2 header; sig holds the signature.
func readV2(r io.Reader, sig []byte) (*Header, error) {
	fixed := make([]byte, 16)
	copy(fixed, sig)
	if _, err := io.ReadFull(r, fixed[12:]); err != nil {
		return nil, fmt.Errorf("proxyproto: reading version 2 header: %w", midHeader(err))
	}
	n := int(binary.BigEndian.Uint16(fixed[14:]))
	full := make([]byte, 16+n)
	copy(full, fixed)
	if _, err := io.ReadFull(r, full[16:]); err != nil {
		return nil, fmt.Errorf("proxyproto: reading version 2 header: %w", midHeader(err))
	}
	return ParseV2(full)
}

// ParseV2 parses a complete version 2 header (exactly 16 + its length
// bytes). TLVs are skipped.
func ParseV2(b []byte) (*Header, error) {
	if len(b) < 16 || !bytes.Equal(b[:12], v2Signature) {
		return nil, fmt.Errorf("%w: not a version 2 header", ErrInvalidHeader)
	}
	n := int(binary.BigEndian.Uint16(b[14:]))
	if len(b) != 16+n {
		return nil, fmt.Errorf("%w: version 2 length %d, have %d bytes", ErrInvalidHeader, n, len(b)-16)
	}
	if b[12]>>4 != 2 {
		return nil, fmt.Errorf("%w: version %d", ErrInvalidHeader, b[12]>>4)
	}
	h := &Header{Version: 2, Len: len(b)}
	switch b[12] & 0xf {
	case 0:
		h.Command = CommandLocal
		return h, nil
	case 1:
		h.Command = CommandProxy
	default:
		return nil, fmt.Errorf("%w: command %d", ErrInvalidHeader, b[12]&0xf)
	}
	family, transport := b[13]>>4, b[13]&0xf
	body := b[16:]
	var alen int
	switch family {
	case 0: // AF_UNSPEC: use the real connection's addresses
		h.Command = CommandLocal
		return h, nil
	case 1:
		alen = 12
	case 2:
		alen = 36
	case 3: // AF_UNIX: no IP address to report
		if len(body) < 216 {
			return nil, fmt.Errorf("%w: UNIX address block too short", ErrInvalidHeader)
		}
		h.Command = CommandLocal
		return h, nil
	default:
		return nil, fmt.Errorf("%w: address family %d", ErrInvalidHeader, family)
	}
	if transport != 1 {
		return nil, fmt.Errorf("%w: transport %d is not a stream", ErrInvalidHeader, transport)
	}
	if len(body) < alen {
		return nil, fmt.Errorf("%w: address block of %d bytes, need %d", ErrInvalidHeader, len(body), alen)
	}
	if family == 1 {
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:]))
	} else {
		src := netip.AddrFrom16([16]byte(body[0:16]))
		dst := netip.AddrFrom16([16]byte(body[16:32]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:]))
	}
	return h, nil
}
