package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nfsimap/nfsimap/node/proxyproto"
)

// responseEnds follows the byte stream a peer sends to know whether it is
// between two responses, without keeping any of it. A response ends with
// a line feed that is not inside a literal; a line ending in "{n}" or
// "{n+}" (then CRLF or LF) announces a literal of n bytes, after which
// the same response goes on. Feed it the stream in pieces of any size:
// the result does not depend on where the pieces were cut.
//
// The zero value is at a boundary, before the first response.
type responseEnds struct {
	// inLine: some bytes of a response came since the last boundary.
	inLine bool
	// literal is how many bytes of a literal's body are still to come.
	literal int64
	// lit is where the current line's end stands in the grammar of a
	// literal announcement, and val the digits read so far.
	lit litState
	val int64
}

// litState is the position in "{" digits ["+"] "}" ["\r"] at the end of
// the bytes of the current line seen so far.
type litState uint8

const (
	litNone   litState = iota // the line does not end in a partial announcement
	litOpen                   // "{"
	litDigits                 // "{" digits
	litPlus                   // "{" digits "+"
	litClosed                 // "{" digits ["+"] "}"
	litCR                     // ... "}\r"
)

// atBoundary reports whether the bytes fed so far end between two
// responses.
func (r *responseEnds) atBoundary() bool { return !r.inLine && r.literal == 0 }

// feed advances over b.
func (r *responseEnds) feed(b []byte) {
	for len(b) > 0 {
		if r.literal == 0 && r.lit == litNone {
			// Lines without a '{' can only end responses: skip all of
			// them, up to the line that holds the next '{'.
			k := bytes.IndexByte(b, '{')
			if k < 0 {
				r.inLine = b[len(b)-1] != '\n'
				return
			}
			if nl := bytes.LastIndexByte(b[:k], '\n'); nl >= 0 {
				r.inLine = false
				b = b[nl+1:]
			}
		}
		b = b[r.step(b):]
	}
}

// untilBoundary advances over the shortest prefix of b after which the
// stream is at a boundary and returns its length; it returns -1 (having
// advanced over all of b) when there is none. At a boundary already, it
// returns 0.
func (r *responseEnds) untilBoundary(b []byte) int {
	i := 0
	for {
		if r.atBoundary() {
			return i
		}
		if i == len(b) {
			return -1
		}
		i += r.step(b[i:])
	}
}

// step advances over a non-empty prefix of b: the rest of a literal's
// body, or the bytes up to and including the next line feed, or all of b.
// It returns the prefix's length.
func (r *responseEnds) step(b []byte) int {
	if r.literal > 0 {
		n := int(min(int64(len(b)), r.literal))
		r.literal -= int64(n)
		if r.literal == 0 {
			// The response goes on after the literal (at least CRLF).
			r.inLine = true
			r.lit = litNone
		}
		return n
	}
	r.inLine = true
	nl := bytes.IndexByte(b, '\n')
	seg := b
	if nl >= 0 {
		seg = b[:nl]
	}
	r.scanLine(seg)
	if nl < 0 {
		return len(b)
	}
	// The end of a line: of the response, unless it announced a literal
	// (then the response goes on after the literal's body, which may be
	// empty).
	announced := r.lit == litClosed || r.lit == litCR
	if announced {
		r.literal = r.val
	}
	r.lit = litNone
	r.inLine = announced
	return nl + 1
}

// scanLine updates the literal announcement state over seg, a piece of a
// line without line feed. Only the bytes after the last '{' can matter,
// and none when the state is litNone and there is no '{'.
func (r *responseEnds) scanLine(seg []byte) {
	if k := bytes.LastIndexByte(seg, '{'); k >= 0 {
		r.lit, r.val = litOpen, 0
		seg = seg[k+1:]
	}
	for _, c := range seg {
		if r.lit == litNone {
			return
		}
		r.litByte(c)
	}
}

// litByte advances the announcement automaton by one byte that is not
// '{' or '\n'.
func (r *responseEnds) litByte(c byte) {
	switch {
	case c >= '0' && c <= '9' && (r.lit == litOpen || r.lit == litDigits):
		d := int64(c - '0')
		if r.val > (math.MaxInt64-d)/10 {
			r.lit = litNone // too big to be a literal
			return
		}
		r.val = r.val*10 + d
		r.lit = litDigits
	case c == '+' && r.lit == litDigits:
		r.lit = litPlus
	case c == '}' && (r.lit == litDigits || r.lit == litPlus):
		r.lit = litClosed
	case c == '\r' && r.lit == litClosed:
		r.lit = litCR
	default:
		r.lit = litNone
	}
}

// Buffers of the copy from a peer to the client. An idle relay (IDLE is
// most of them) keeps only a small buffer; a relay whose reads fill it
// borrows a big one from a pool until its reads are small again.
const (
	smallRelayBuf = 4 << 10
	bigRelayBuf   = 64 << 10
)

// newRelayBufs returns a pool of big relay buffers (a Cluster has one).
func newRelayBufs() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, bigRelayBuf); return &b }}
}

// errStopped ends copyResponses after it said BYE.
var errStopped = errors.New("cluster: relay stopped with BYE")

// byeLine is what a relay stopped by a shutdown tells the client.
const byeLine = "* BYE [UNAVAILABLE] Server shutting down, please reconnect\r\n"

// copyResponses copies the peer's responses to the client: first what br
// holds already, then what peer sends, each read written as it came in
// one write. It follows where responses end (responseEnds), so that when
// stopping is set it can put an untagged BYE between two responses and
// return errStopped. A read interrupted by the deadline set on peer is
// resumed when it was inside a response. The byte count is of the peer's
// bytes written to the client. Big buffers come from bufs (newRelayBufs).
func copyResponses(client net.Conn, br *bufio.Reader, peer net.Conn, stopping *atomic.Bool, bufs *sync.Pool) (int64, error) {
	var (
		n    int64
		ends responseEnds
	)
	small := make([]byte, smallRelayBuf)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			bufs.Put(big)
		}
	}()
	bye := func() (int64, error) {
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(client, byeLine)
		return n, errStopped
	}
	// send writes b; with cut, only up to the first boundary in it, and
	// then it reports stop.
	send := func(b []byte, cut bool) (stop bool, err error) {
		if cut {
			if i := ends.untilBoundary(b); i >= 0 {
				b, stop = b[:i], true
			}
		} else {
			ends.feed(b)
		}
		if len(b) == 0 {
			return stop, nil
		}
		k, err := client.Write(b)
		n += int64(k)
		return stop, err
	}
	if k := br.Buffered(); k > 0 {
		b, _ := br.Peek(k)
		_, err := send(b, false)
		br.Discard(k)
		if err != nil {
			return n, err
		}
	}
	for {
		// Bytes read before the relay was stopped are all relayed; bytes
		// read after, up to the first end of a response.
		stopped := stopping.Load()
		if stopped && ends.atBoundary() {
			return bye()
		}
		k, err := peer.Read(buf)
		if k > 0 {
			stop, werr := send(buf[:k], stopped)
			if werr != nil {
				return n, werr
			}
			if stop {
				return bye()
			}
			switch {
			case k == len(buf) && big == nil:
				big = bufs.Get().(*[]byte)
				buf = *big
			case k < smallRelayBuf && big != nil:
				bufs.Put(big)
				big, buf = nil, small
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && stopping.Load():
			if ends.atBoundary() {
				return bye()
			}
			peer.SetReadDeadline(time.Time{})
		case errors.Is(err, io.EOF):
			return n, nil
		default:
			return n, err
		}
	}
}

// copyRequests copies the client's bytes to the peer: first what in
// (the front's reader on client) holds already, then, when in is a
// *bufio.Reader, straight from the client's socket. Other readers are
// copied as they are. Plain reads and writes, not splice(2): commands
// are small, and a splice through a pipe added about 0.02 ms to every
// proxied command's round trip (TestProxyCost: +0.065 ms p50 per command
// instead of +0.08 to +0.1).
func copyRequests(peer net.Conn, in io.Reader, client net.Conn) (int64, error) {
	br, ok := in.(*bufio.Reader)
	if !ok {
		return io.Copy(peer, in)
	}
	var n int64
	if k := br.Buffered(); k > 0 {
		b, _ := br.Peek(k)
		w, err := peer.Write(b)
		n += int64(w)
		br.Discard(w)
		if err != nil {
			return n, err
		}
	}
	src := rawConn(client)
	if src == nil {
		m, err := io.Copy(peer, br)
		return n + m, err
	}
	// Hiding the types keeps io.Copy from using TCPConn.ReadFrom's
	// splice. The buffer is held for the connection's life, so it is the
	// small one, as copyResponses keeps for an idle relay.
	m, err := io.CopyBuffer(struct{ io.Writer }{peer}, struct{ io.Reader }{src}, make([]byte, smallRelayBuf))
	return n + m, err
}

// rawConn returns the *net.TCPConn under client when reading from it
// directly gives the same bytes as reading client: client itself, or a
// PROXY protocol connection whose header was read (with the header
// required, nothing read ahead is left in it once the front has read the
// login). nil otherwise (TLS, or a wrapper of unknown kind).
func rawConn(client net.Conn) *net.TCPConn {
	switch c := client.(type) {
	case *net.TCPConn:
		return c
	case *proxyproto.Conn:
		if h, err := c.Header(); err != nil || h == nil {
			return nil // no header: bytes may be pending in c
		}
		tc, _ := c.NetConn().(*net.TCPConn)
		return tc
	}
	return nil
}
