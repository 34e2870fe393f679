package front

import (
	"bytes"
	"time"
)

// commandLabel returns the name under which a command is reported to
// Config.Observer: its own (upper-case) name when it is one IMAP knows,
// "OTHER" otherwise, so a client cannot make up label values. It returns
// constant strings: no allocation.
func commandLabel(name string) string {
	switch name {
	case "CAPABILITY", "NOOP", "LOGOUT", "ID", "ENABLE", "IDLE", "NAMESPACE",
		"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
		"LIST", "LSUB", "STATUS", "APPEND", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE",
		"SEARCH", "FETCH", "STORE", "COPY", "MOVE", "SORT", "THREAD",
		"UID EXPUNGE", "UID SEARCH", "UID FETCH", "UID STORE", "UID COPY", "UID MOVE",
		"UID SORT", "UID THREAD",
		"LOGIN", "AUTHENTICATE", "STARTTLS", "UNAUTHENTICATE":
		return name
	}
	return "OTHER"
}

// replyStatus returns the status of a tagged reply from its text after
// the tag and space: "OK", "NO", "BAD", or "OTHER".
func replyStatus(b []byte) string {
	word := b
	if i := bytes.IndexAny(b, " \r\n"); i >= 0 {
		word = b[:i]
	}
	switch string(word) {
	case "OK":
		return "OK"
	case "NO":
		return "NO"
	case "BAD":
		return "BAD"
	}
	return "OTHER"
}

// ownReplyStatus returns the status of the tagged reply that ends out, a
// reply the command layer made itself.
func ownReplyStatus(out []byte, tag string) string {
	line := bytes.TrimSuffix(out, []byte("\r\n"))
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if len(line) > len(tag) && string(line[:len(tag)]) == tag && line[len(tag)] == ' ' {
		return replyStatus(line[len(tag)+1:])
	}
	return "OTHER"
}

// observeOwn reports a command the layer answered itself, begun at start.
func (h *handoffConn) observeOwn(name string, start time.Time, status string) {
	if o := h.f.cfg.Observer; o != nil {
		o.Command(commandLabel(name), time.Since(start), status)
	}
}
