package front

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/node/imaperr"
	"github.com/nfsimap/nfsimap/node/sortthread"
)

// intercept answers a command the layer handles itself (CAPABILITY, ID,
// SORT, THREAD), at a command boundary, while go-imap waits in Read.
func (h *handoffConn) intercept(cl commandLine) error {
	var start time.Time
	if h.f.cfg.Observer != nil {
		start = time.Now()
	}
	h.raw.SetReadDeadline(time.Now().Add(h.f.cfg.CommandTimeout))
	args, lh, err := h.lr.readArgs(cl.args, h.f.cfg.MaxAuthLiteral, func() error {
		return h.writeOwn([]byte("+ Ready for literal data\r\n"))
	})
	if errors.Is(err, errLiteralTooBig) {
		h.observeOwn(cl.name, start, "NO")
		if err := h.writeOwn(status(cl.tag, imap.StatusResponseTypeNo, imap.ResponseCodeTooBig, "Literal too big")); err != nil {
			return err
		}
		return h.dropCommand(lh)
	}
	if err != nil {
		return h.readErr(err)
	}
	out := h.answer(cl, args)
	if h.f.cfg.Observer != nil {
		h.observeOwn(cl.name, start, ownReplyStatus(out, cl.tag))
	}
	return h.writeOwn(out)
}

// answer runs an intercepted command. A panic in the session is logged
// and answered NO [SERVERBUG].
func (h *handoffConn) answer(cl commandLine, args []byte) (out []byte) {
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("panic answering "+cl.name, "panic", v, "stack", stack())
			out = status(cl.tag, imap.StatusResponseTypeNo, imap.ResponseCodeServerBug, "Internal server error")
		}
	}()
	switch cl.name {
	case "CAPABILITY":
		if len(args) != 0 {
			out = status(cl.tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Unexpected arguments")
			break
		}
		h.outMu.Lock()
		caps := strings.Join(h.caps, " ")
		h.outMu.Unlock()
		out = fmt.Appendf(out, "* CAPABILITY %s\r\n", caps)
		out = imaperr.Format(out, cl.tag, &imap.StatusResponse{Type: imap.StatusResponseTypeOK, Text: "CAPABILITY completed"})
	case "ID":
		out = handleID(out, cl.tag, args, &h.info, h.f.cfg, h.log)
	case "SORT", "UID SORT":
		out = h.sort(cl.tag, cl.name == "UID SORT", args)
	case "THREAD", "UID THREAD":
		out = h.thread(cl.tag, cl.name == "UID THREAD", args)
	}
	return out
}

// parseErrReply maps a sortthread parser error to BAD or NO [BADCHARSET].
func parseErrReply(tag string, err error) []byte {
	if errors.Is(err, sortthread.ErrBadCharset) {
		return status(tag, imap.StatusResponseTypeNo, imap.ResponseCode("BADCHARSET (UTF-8 US-ASCII)"), "Unsupported charset")
	}
	text := "Syntax error"
	if errors.Is(err, sortthread.ErrUnknownAlgorithm) {
		text = "Unknown threading algorithm"
	}
	return status(tag, imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, text)
}

func (h *handoffConn) sort(tag string, uid bool, args []byte) []byte {
	sorter, ok := h.sess.(Sorter)
	if !ok {
		return status(tag, imap.StatusResponseTypeBad, "", "Unknown command")
	}
	cmd, err := sortthread.ParseSort(args)
	if err != nil {
		return parseErrReply(tag, err)
	}
	nums, err := sorter.Sort(uid, cmd)
	if err != nil {
		return imaperr.Format(nil, tag, imaperr.Reply(err, h.log, "cmd", "SORT"))
	}
	var out []byte
	if cmd.Return != nil {
		out = sortthread.FormatESort(tag, uid, cmd.Return, nums)
	} else {
		out = sortthread.FormatSort(nums)
	}
	return imaperr.Format(out, tag, &imap.StatusResponse{Type: imap.StatusResponseTypeOK, Text: "SORT completed"})
}

func (h *handoffConn) thread(tag string, uid bool, args []byte) []byte {
	threader, ok := h.sess.(Threader)
	if !ok {
		return status(tag, imap.StatusResponseTypeBad, "", "Unknown command")
	}
	cmd, err := sortthread.ParseThread(args)
	if err != nil {
		return parseErrReply(tag, err)
	}
	nodes, err := threader.Thread(uid, cmd)
	if err != nil {
		return imaperr.Format(nil, tag, imaperr.Reply(err, h.log, "cmd", "THREAD"))
	}
	out := sortthread.FormatThreadResponse(nodes, uid)
	return imaperr.Format(out, tag, &imap.StatusResponse{Type: imap.StatusResponseTypeOK, Text: "THREAD completed"})
}
