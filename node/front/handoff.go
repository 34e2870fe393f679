package front

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/nfsimap/nfsimap/node/imaperr"
)

// go-imap's limits the command layer must respect (imapserver/conn.go).
const (
	// goimapMaxLiteral is the largest literal go-imap takes outside
	// APPEND; a bigger synchronizing one hangs the client, so the command
	// layer refuses it itself.
	goimapMaxLiteral = 4096
	// goimapMaxCommand is go-imap's limit on the bytes of one command it
	// decodes (APPEND's message not counted); the command layer keeps
	// below it.
	goimapMaxCommand = 48 * 1024
	// maxTagLen bounds tags, so the output scanner can recognise the
	// tagged reply from the start of a line.
	maxTagLen = 64
)

// chanListener is a net.Listener whose connections come from a channel:
// the front hands authenticated connections to go-imap's Serve through it.
type chanListener struct {
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "handoff" }

// handoffServer is one go-imap server with its listener. The front keeps
// one per capability set, since go-imap panics when it advertises what a
// session does not implement.
type handoffServer struct {
	srv *imapserver.Server
	ln  *chanListener
}

// goimapLogger sends go-imap's log lines to slog.
type goimapLogger struct{ log *slog.Logger }

func (l goimapLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, "panic") {
		l.log.Error("go-imap: " + msg)
		return
	}
	l.log.Warn("go-imap: " + msg)
}

// capsFor returns the capabilities go-imap may advertise for sess.
func (f *Front) capsFor(sess imapserver.Session) imap.CapSet {
	caps := f.cfg.Caps.Copy()
	if _, ok := sess.(imapserver.SessionNamespace); !ok {
		delete(caps, imap.CapNamespace)
	}
	if _, ok := sess.(imapserver.SessionMove); !ok {
		delete(caps, imap.CapMove)
	}
	if _, ok := sess.(imapserver.SessionIMAP4rev2); !ok {
		delete(caps, imap.CapIMAP4rev2)
	}
	if _, ok := sess.(imapserver.SessionUnauthenticate); !ok {
		delete(caps, imap.CapUnauthenticate)
	}
	if !caps.Has(imap.CapIMAP4rev2) {
		caps[imap.CapIMAP4rev1] = struct{}{}
	}
	return caps
}

// handOff gives an authenticated connection to go-imap.
func (f *Front) handOff(hc *handoffConn) error {
	caps := f.capsFor(hc.sess)
	names := make([]string, 0, len(caps))
	for c := range caps {
		names = append(names, string(c))
	}
	slices.Sort(names)
	key := strings.Join(names, " ")

	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return fmt.Errorf("front shutting down: %w", imaperr.ErrUnavailable)
	}
	s := f.servers[key]
	if s == nil {
		s = &handoffServer{ln: newChanListener()}
		s.srv = imapserver.New(&imapserver.Options{
			NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
				hc, ok := c.NetConn().(*handoffConn)
				if !ok {
					return nil, nil, errors.New("front: foreign connection on the hand-off listener")
				}
				return hc.sess, &imapserver.GreetingData{PreAuth: true}, nil
			},
			Caps:         caps,
			Logger:       goimapLogger{f.log},
			InsecureAuth: true, // authentication is over when go-imap sees the connection
		})
		f.servers[key] = s
		f.serveWG.Add(1)
		go func() {
			defer f.serveWG.Done()
			if err := s.srv.Serve(s.ln); err != nil {
				f.log.Error("hand-off server stopped", "err", err)
			}
		}()
	}
	f.conns[hc] = struct{}{}
	f.mu.Unlock()

	select {
	case s.ln.ch <- hc:
		return nil
	case <-s.ln.done:
		f.untrack(hc)
		return fmt.Errorf("hand-off server closed: %w", imaperr.ErrUnavailable)
	}
}

// readState says what the next bytes from the client are, as far as the
// command layer knows.
type readState int

const (
	rsBoundary     readState = iota // the start of a command
	rsLitDecision                   // data of a literal whose header go-imap got: did it accept it?
	rsLiteral                       // data of an accepted literal (litLeft bytes)
	rsAfterLiteral                  // the rest of a command line after a literal
	rsInCommand                     // go-imap runs a command; more input is a continuation (IDLE's DONE)
)

// Phases for shutdown: may beginShutdown interrupt the current read?
const (
	phaseBusy    int32 = iota // inside a command: say BYE at the next boundary
	phaseWaiting              // waiting for a command or in IDLE: interrupt now
)

// handoffConn is the command layer: the net.Conn go-imap gets for an
// authenticated connection. Read hands go-imap one command (or one piece
// of one, never past a literal header) at a time, answers some commands
// itself at command boundaries, and enforces our timeouts; Write batches
// go-imap's output, swaps envelope placeholders in it (envelope.go) and
// watches it for continuation requests and tagged replies.
type handoffConn struct {
	f    *Front
	raw  net.Conn // the client socket, or its *tls.Conn
	br   *bufio.Reader
	lr   lineReader
	info ConnInfo
	sess imapserver.Session
	log  *slog.Logger

	// Read side: used only by go-imap's connection goroutine, in Read.
	state     readState
	pending   []byte // bytes to give go-imap before reading more
	lit       literalHeader
	litLeft   int64
	cmdBytes  int64 // bytes of the current command given to go-imap
	cmdAppend bool  // the current command is APPEND (its message is not go-imap's command size)

	phase atomic.Int32
	stop  atomic.Bool
	// pipelined: a complete command line from the client was already
	// buffered when go-imap was given the current command, so a tagged
	// reply does not flush the output by itself (waitLine does).
	pipelined atomic.Bool

	outMu     sync.Mutex // guards the fields below and all writes to raw
	out       []byte     // go-imap output not yet written
	greeted   bool       // go-imap's greeting has been replaced
	greetLine []byte
	loginTag  string
	caps      []string     // advertised after login
	envSwap   envelopeSwap // replaces envelope placeholders in go-imap's lines
	head      []byte       // the first bytes of the output line being written
	tail      []byte       // its last bytes (for a literal header)
	outLit    int64        // bytes left of a literal in the output
	afterLit  bool         // the current output line continues after a literal
	curTag    string       // tag of the command go-imap is running
	sawTagged bool         // go-imap sent curTag's tagged reply
	sawCont   bool         // go-imap sent "+" since the last forwarded piece
	idling    bool         // the current command is IDLE
	cmdName   string       // metric name of the command go-imap runs; "" when not observed
	cmdStart  time.Time    // when its first line was read
	closed    bool
	closeOnce sync.Once
	ended     func() // Config.OnSession's, called when the connection closes
}

var _ net.Conn = (*handoffConn)(nil)

func newHandoffConn(f *Front, raw net.Conn, br *bufio.Reader, info ConnInfo, sess imapserver.Session, loginTag string, log *slog.Logger) *handoffConn {
	h := &handoffConn{
		f:        f,
		raw:      raw,
		br:       br,
		info:     info,
		sess:     sess,
		log:      log,
		loginTag: loginTag,
		state:    rsBoundary,
	}
	maxLine := min(f.cfg.MaxLineLength, goimapMaxCommand-goimapMaxLiteral)
	h.lr = lineReader{br: br, maxLine: maxLine}
	h.phase.Store(phaseBusy)
	return h
}

// ConnectionState reports the TLS state of the client connection.
func (h *handoffConn) ConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := h.raw.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

func (h *handoffConn) LocalAddr() net.Addr  { return h.raw.LocalAddr() }
func (h *handoffConn) RemoteAddr() net.Addr { return h.raw.RemoteAddr() }

// The deadlines go-imap sets are ignored: the command layer sets the
// socket's own (Read and flushLocked).
func (h *handoffConn) SetDeadline(time.Time) error      { return nil }
func (h *handoffConn) SetReadDeadline(time.Time) error  { return nil }
func (h *handoffConn) SetWriteDeadline(time.Time) error { return nil }

// Close flushes what go-imap wrote and closes the client connection.
func (h *handoffConn) Close() error {
	var err error
	h.closeOnce.Do(func() {
		if h.ended != nil {
			defer h.ended()
		}
		h.outMu.Lock()
		if !h.closed {
			h.flushLocked()
			h.closed = true
		}
		h.outMu.Unlock()
		err = h.raw.Close()
		h.f.untrack(h)
	})
	return err
}

func (h *handoffConn) beginShutdown() {
	h.stop.Store(true)
	if h.phase.Load() == phaseWaiting {
		h.raw.SetReadDeadline(time.Now())
	}
}

func (h *handoffConn) forceClose() { h.raw.Close() }

// bye says BYE and closes the client connection; go-imap then sees EOF.
func (h *handoffConn) bye(text string) {
	h.outMu.Lock()
	if !h.closed {
		h.out = append(h.out, "* BYE "...)
		h.out = append(h.out, text...)
		h.out = append(h.out, '\r', '\n')
		h.flushLocked()
		h.closed = true
	}
	h.outMu.Unlock()
	h.raw.Close()
}

// flushLocked writes the buffered output. outMu must be held.
func (h *handoffConn) flushLocked() error {
	if len(h.out) == 0 || h.closed {
		h.out = h.out[:0]
		return nil
	}
	h.raw.SetWriteDeadline(time.Now().Add(h.f.cfg.WriteTimeout))
	_, err := h.raw.Write(h.out)
	if cap(h.out) > keepOutBuffer {
		// Idle connections are many: do not keep big buffers.
		h.out = nil
	} else {
		h.out = h.out[:0]
	}
	if err != nil {
		h.closed = true
		return fmt.Errorf("writing to client: %w", err)
	}
	return nil
}

// outBatch is how much go-imap output is gathered before a write;
// keepOutBuffer the largest buffer kept between writes.
const (
	outBatch      = 64 * 1024
	keepOutBuffer = 8 * 1024
)

// Write takes go-imap's output. It replaces go-imap's PREAUTH greeting by
// the tagged OK of the LOGIN, swaps envelope placeholders for the
// envelopes they carry (envelope.go), notes continuation requests and
// tagged replies, and writes at tagged replies, continuation requests,
// BYE, each line during IDLE, and when a batch is full.
func (h *handoffConn) Write(p []byte) (int, error) {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	if h.closed {
		return 0, net.ErrClosed
	}
	n := len(p)
	if !h.greeted {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			h.greetLine = append(h.greetLine, p...)
			return n, nil
		}
		h.greetLine = append(h.greetLine, p[:i+1]...)
		p = p[i+1:]
		h.greetLocked()
	}
	flush, err := h.scanOutputLocked(p)
	if err != nil {
		return 0, err
	}
	if flush || len(h.out) >= outBatch {
		if err := h.flushLocked(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// greetLocked turns go-imap's "* PREAUTH [CAPABILITY ...] ..." greeting
// into the LOGIN's tagged OK with our capability list.
func (h *handoffConn) greetLocked() {
	h.greeted = true
	line := string(trimCRLF(h.greetLine))
	h.greetLine = nil
	var caps []string
	if i, j := strings.Index(line, "[CAPABILITY "), strings.IndexByte(line, ']'); i >= 0 && j > i {
		caps = strings.Fields(line[i+len("[CAPABILITY ") : j])
	} else {
		h.log.Warn("go-imap greeting without capabilities", "greeting", line)
		caps = []string{"IMAP4rev1"}
	}
	h.caps = h.extendCaps(caps)
	h.out = fmt.Appendf(h.out, "%s OK [CAPABILITY %s] Logged in\r\n", h.loginTag, strings.Join(h.caps, " "))
	h.flushLocked()
}

// extendCaps adds the capabilities of the commands the layer answers.
func (h *handoffConn) extendCaps(caps []string) []string {
	out := make([]string, 0, len(caps)+6)
	hasPlus := slices.Contains(caps, "LITERAL+")
	for _, c := range caps {
		if c == "LITERAL-" && hasPlus {
			continue
		}
		out = append(out, c)
	}
	out = append(out, "ID")
	if _, ok := h.sess.(Sorter); ok {
		out = append(out, "SORT", "ESORT")
	}
	if _, ok := h.sess.(Threader); ok {
		out = append(out, "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES")
	}
	return out
}

// scanOutputLocked follows go-imap's output framing (lines and literals)
// through p, adds p to the batch (line text through the envelope swap,
// literal data as it is; a literal bigger than a batch is written
// directly) and reports whether the batch should be written now.
func (h *handoffConn) scanOutputLocked(p []byte) (bool, error) {
	flush := false
	for len(p) > 0 {
		if h.outLit > 0 {
			k := int64(len(p))
			if k > h.outLit {
				k = h.outLit
			}
			if err := h.addLiteralLocked(p[:k]); err != nil {
				return false, err
			}
			h.outLit -= k
			p = p[k:]
			if h.outLit == 0 {
				h.afterLit = true
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i+1]
		}
		p = p[len(seg):]
		h.out = h.envSwap.feed(h.out, seg)
		if h.envSwap.dropped > 0 && h.log != nil {
			h.log.Error("malformed envelope placeholder in go-imap's output, dropped", "count", h.envSwap.dropped)
			h.envSwap.dropped = 0
		}
		if room := maxTagLen + 8 - len(h.head); room > 0 {
			h.head = append(h.head, seg[:min(room, len(seg))]...)
		}
		h.tail = append(h.tail, seg...)
		if len(h.tail) > tailKeep {
			h.tail = append(h.tail[:0], h.tail[len(h.tail)-tailKeep:]...)
		}
		if i < 0 {
			break
		}
		// A line is complete.
		if !h.afterLit {
			switch {
			case bytes.HasPrefix(h.head, []byte("+ ")) || bytes.HasPrefix(h.head, []byte("+\r")):
				h.sawCont = true
				flush = true
			case h.curTag != "" && len(h.head) > len(h.curTag) && string(h.head[:len(h.curTag)]) == h.curTag && h.head[len(h.curTag)] == ' ':
				h.sawTagged = true
				h.idling = false
				flush = !h.pipelined.Load()
				if h.cmdName != "" {
					h.f.cfg.Observer.Command(h.cmdName, time.Since(h.cmdStart), replyStatus(h.head[len(h.curTag)+1:]))
					h.cmdName = ""
				}
			case bytes.HasPrefix(h.head, []byte("* BYE")):
				flush = true
			}
		}
		if h.idling {
			flush = true
		}
		h.afterLit = false
		if lh, ok := parseLiteralSuffix(trimCRLF(h.tail)); ok {
			h.outLit = lh.size
			h.afterLit = true
		}
		h.head = h.head[:0]
		h.tail = h.tail[:0]
	}
	return flush, nil
}

// addLiteralLocked adds literal data from go-imap to the batch; data
// bigger than a batch is written directly after what is batched.
func (h *handoffConn) addLiteralLocked(b []byte) error {
	if len(h.out)+len(b) <= outBatch {
		h.out = append(h.out, b...)
		return nil
	}
	if err := h.flushLocked(); err != nil {
		return err
	}
	if len(b) <= outBatch {
		h.out = append(h.out, b...)
		return nil
	}
	if h.closed || h.raw == nil {
		return net.ErrClosed
	}
	h.raw.SetWriteDeadline(time.Now().Add(h.f.cfg.WriteTimeout))
	if _, err := h.raw.Write(b); err != nil {
		h.closed = true
		return fmt.Errorf("writing to client: %w", err)
	}
	return nil
}

// outputState returns what go-imap said since the last forwarded piece.
func (h *handoffConn) outputState() (tagged, cont bool) {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	return h.sawTagged, h.sawCont
}

// forwarded notes that a piece of the current command goes to go-imap.
// For a new command, name is its name (commandLine.name): the command is
// timed until its tagged reply for Config.Observer.
func (h *handoffConn) forwarded(tag, name string, newCommand bool) {
	var start time.Time
	label := ""
	if newCommand && name != "IDLE" && h.f.cfg.Observer != nil {
		label, start = commandLabel(name), time.Now()
	}
	h.outMu.Lock()
	defer h.outMu.Unlock()
	if newCommand {
		h.curTag = tag
		h.sawTagged = false
		h.idling = name == "IDLE"
		h.cmdName, h.cmdStart = label, start
	}
	h.sawCont = false
}

// flush writes the buffered output (before a read that may block).
func (h *handoffConn) flush() error {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	return h.flushLocked()
}

// writeOwn writes lines the layer makes itself, at a command boundary.
func (h *handoffConn) writeOwn(b []byte) error {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	if h.closed {
		return net.ErrClosed
	}
	h.out = append(h.out, b...)
	return h.flushLocked()
}

// errStop ends a connection from Read: go-imap gets io.EOF.
var errStop = errors.New("connection ended by the command layer")

// Read gives go-imap its next input. See the package notes in NOTES.md
// ("The hand-off and the command layer"): never past an intercepted
// command or a literal header; literal data only once go-imap accepted the
// literal.
func (h *handoffConn) Read(p []byte) (int, error) {
	for {
		if len(h.pending) > 0 {
			n := copy(p, h.pending)
			h.pending = h.pending[n:]
			return n, nil
		}
		var err error
		switch h.state {
		case rsLiteral:
			return h.readLiteral(p)
		case rsBoundary:
			err = h.nextCommand()
		case rsLitDecision:
			tagged, cont := h.outputState()
			switch {
			case tagged:
				// go-imap refused the literal (and the command).
				err = h.dropCommand(h.lit)
				h.state = rsBoundary
			case h.lit.nonSync || cont:
				h.litLeft = h.lit.size
				h.state = rsLiteral
				h.forwarded("", "", false)
				if h.litLeft == 0 {
					h.state = rsAfterLiteral
				}
			default:
				h.log.Error("go-imap read a synchronizing literal without asking for it")
				err = errStop
			}
		case rsAfterLiteral:
			if tagged, _ := h.outputState(); tagged {
				// go-imap answered before the end of the command: drop it.
				err = h.dropRestOfLine()
				h.state = rsBoundary
			} else {
				err = h.forwardLine(h.f.cfg.CommandTimeout)
			}
		case rsInCommand:
			tagged, cont := h.outputState()
			switch {
			case tagged:
				h.state = rsBoundary
			case cont:
				err = h.forwardContinuation()
			default:
				// go-imap reads for a new command although it did not
				// answer the last: treat it as a boundary.
				h.log.Debug("go-imap read without a tagged reply", "tag", h.curTag)
				h.state = rsBoundary
			}
		}
		if err != nil {
			if errors.Is(err, errStop) || errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, err
		}
	}
}

// readLiteral forwards literal data.
func (h *handoffConn) readLiteral(p []byte) (int, error) {
	if int64(len(p)) > h.litLeft {
		p = p[:h.litLeft]
	}
	h.raw.SetReadDeadline(time.Now().Add(h.f.cfg.CommandTimeout))
	n, err := h.br.Read(p)
	h.litLeft -= int64(n)
	if h.litLeft == 0 {
		h.state = rsAfterLiteral
	}
	if err != nil && n > 0 {
		err = nil
	}
	if err != nil {
		if err = h.readErr(err); errors.Is(err, errStop) {
			err = io.EOF
		}
		return n, err
	}
	return n, nil
}

// readErr turns a failed read into what go-imap should see.
func (h *handoffConn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if h.stop.Load() {
			h.bye("[UNAVAILABLE] Server shutting down")
		} else {
			h.bye("Autologout; idle for too long")
		}
		return errStop
	}
	return err
}

// waitLine reads a line while waiting for the client (at a boundary or in
// IDLE), when shutdown may interrupt.
func (h *handoffConn) waitLine() ([]byte, error) {
	// Output waits while the client's next command is already here
	// (pipelining): the answers to a burst of commands go out in one
	// write, which matters most through a proxy (every write is a wake-up
	// and two system calls more on the proxying node). A read that may
	// block always comes after a flush.
	more := h.lr.lineBuffered()
	h.pipelined.Store(more)
	if !more {
		if err := h.flush(); err != nil {
			return nil, err
		}
	}
	h.phase.Store(phaseWaiting)
	defer h.phase.Store(phaseBusy)
	deadline := time.Now().Add(h.f.cfg.IdleTimeout)
	h.raw.SetReadDeadline(deadline)
	if h.stop.Load() {
		h.bye("[UNAVAILABLE] Server shutting down")
		return nil, errStop
	}
	if err := h.idleKeepalives(deadline); err != nil {
		return nil, err
	}
	line, err := h.lr.readLine()
	if err != nil && !errors.Is(err, errLineTooLong) {
		return nil, h.readErr(err)
	}
	return line, err
}

// idleKeepalives waits, while the client is in IDLE, for its next byte
// and says "* OK Still here" every IdleKeepalive until then. It peeks, so
// nothing the client sends is lost to a keepalive's read deadline. It
// returns with the read deadline set to deadline.
func (h *handoffConn) idleKeepalives(deadline time.Time) error {
	every := h.f.cfg.IdleKeepalive
	h.outMu.Lock()
	idling := h.idling
	h.outMu.Unlock()
	if !idling || every <= 0 {
		return nil
	}
	for {
		next := time.Now().Add(every)
		if next.After(deadline) {
			break
		}
		h.raw.SetReadDeadline(next)
		_, err := h.br.Peek(1)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || h.stop.Load() {
			h.raw.SetReadDeadline(deadline)
			return h.readErr(err)
		}
		if err := h.keepalive(); err != nil {
			return err
		}
	}
	h.raw.SetReadDeadline(deadline)
	return nil
}

// keepalive writes "* OK Still here" if go-imap's output is at a line
// boundary (else the next keepalive will).
func (h *handoffConn) keepalive() error {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	if h.closed {
		return errStop
	}
	if len(h.head) > 0 || h.outLit > 0 || h.afterLit {
		return nil
	}
	h.out = append(h.out, "* OK Still here\r\n"...)
	return h.flushLocked()
}

// forwardLine reads one line inside a command and queues it for go-imap,
// noting a literal it announces.
func (h *handoffConn) forwardLine(timeout time.Duration) error {
	if err := h.flush(); err != nil {
		return err
	}
	h.raw.SetReadDeadline(time.Now().Add(timeout))
	line, err := h.lr.readLine()
	if errors.Is(err, errLineTooLong) {
		h.bye("Command line too long")
		return errStop
	}
	if err != nil {
		return h.readErr(err)
	}
	return h.queue(line)
}

// forwardContinuation passes a continuation line (IDLE's DONE).
func (h *handoffConn) forwardContinuation() error {
	h.outMu.Lock()
	idling := h.idling
	h.outMu.Unlock()
	if !idling {
		return h.forwardLine(h.f.cfg.CommandTimeout)
	}
	line, err := h.waitLine()
	if errors.Is(err, errLineTooLong) {
		h.bye("Line too long")
		return errStop
	}
	if err != nil {
		return err
	}
	return h.queue(line)
}

// queue hands line (with CRLF) to go-imap as the next piece of the
// current command.
func (h *handoffConn) queue(line []byte) error {
	h.forwarded("", "", false)
	h.cmdBytes += int64(len(line)) + 2
	lh, isLit := parseLiteralSuffix(line)
	if isLit {
		if !h.cmdAppend && (lh.size > goimapMaxLiteral || h.cmdBytes+lh.size > goimapMaxCommand) {
			// Only reachable in the middle of a command with several
			// literals: what go-imap already has cannot be withdrawn.
			h.bye("[TOOBIG] Command too long")
			return errStop
		}
		h.lit = lh
		h.state = rsLitDecision
		h.cmdBytes += lh.size
	} else {
		h.state = rsInCommand
	}
	h.pending = append(append(h.pending[:0], line...), '\r', '\n')
	return nil
}

// dropCommand drops the rest of a command after a refused literal.
func (h *handoffConn) dropCommand(lh literalHeader) error {
	h.raw.SetReadDeadline(time.Now().Add(h.f.cfg.CommandTimeout))
	if err := h.lr.discardCommand(lh, h.f.cfg.MaxDiscard); err != nil {
		if errors.Is(err, errLiteralTooBig) {
			h.bye("[TOOBIG] Literal too big")
			return errStop
		}
		return h.readErr(err)
	}
	return nil
}

// dropRestOfLine drops the rest of a command line after literal data
// go-imap did not wait for.
func (h *handoffConn) dropRestOfLine() error {
	h.raw.SetReadDeadline(time.Now().Add(h.f.cfg.CommandTimeout))
	line, err := h.lr.readLine()
	if err != nil && !errors.Is(err, errLineTooLong) {
		return h.readErr(err)
	}
	if lh, ok := parseLiteralSuffix(line); ok {
		return h.dropCommand(lh)
	}
	return nil
}

// status formats a status line.
func status(tag string, typ imap.StatusResponseType, code imap.ResponseCode, text string) []byte {
	return imaperr.Format(nil, tag, &imap.StatusResponse{Type: typ, Code: code, Text: text})
}

// nextCommand reads the next command at a boundary: it answers it (an
// intercepted command, a refused literal, a malformed line) and loops, or
// queues it for go-imap.
func (h *handoffConn) nextCommand() error {
	for {
		line, err := h.waitLine()
		if errors.Is(err, errLineTooLong) {
			// The tag went with the start of the line.
			if err := h.writeOwn(status("*", imap.StatusResponseTypeBad, imap.ResponseCodeTooBig, "Command line too long")); err != nil {
				return err
			}
			if lh, ok := parseLiteralSuffix(line); ok {
				if err := h.dropCommand(lh); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
			continue
		}
		lh, hasLit := parseLiteralSuffix(line)
		cl, ok := splitCommand(line)
		if !ok || len(cl.tag) > maxTagLen {
			if err := h.writeOwn(status("*", imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Syntax error in command")); err != nil {
				return err
			}
			if hasLit {
				if err := h.dropCommand(lh); err != nil {
					return err
				}
			}
			continue
		}
		switch cl.name {
		case "CAPABILITY", "ID", "SORT", "UID SORT", "THREAD", "UID THREAD":
			if err := h.intercept(cl); err != nil {
				return err
			}
			continue
		}
		if hasLit && cl.name != "APPEND" && lh.size > goimapMaxLiteral {
			if err := h.writeOwn(status(cl.tag, imap.StatusResponseTypeNo, imap.ResponseCodeTooBig, fmt.Sprintf("Literals are limited to %d bytes for this command", goimapMaxLiteral))); err != nil {
				return err
			}
			if err := h.dropCommand(lh); err != nil {
				return err
			}
			continue
		}
		h.forwarded(cl.tag, cl.name, true)
		h.cmdBytes = 0
		h.cmdAppend = cl.name == "APPEND"
		return h.queue(line)
	}
}
