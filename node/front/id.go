package front

import (
	"log/slog"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/nfsimap/nfsimap/node/imaperr"
)

// maxIDFields bounds the number of ID field pairs kept (RFC 2971 allows 30).
const maxIDFields = 30

// parseID parses the argument of ID: NIL or a list of field/value pairs.
func parseID(args []byte) (map[string]string, bool) {
	p := argParser{b: args}
	if p.peek() != '(' {
		_, isNil, ok := p.nstring()
		return nil, ok && isNil && p.atEnd()
	}
	p.pos++
	fields := make(map[string]string)
	for first := true; ; first = false {
		if p.peek() == ')' {
			p.pos++
			return fields, p.atEnd()
		}
		if !first && !p.sp() {
			return nil, false
		}
		key, isNil, ok := p.nstring()
		if !ok || isNil || !p.sp() {
			return nil, false
		}
		val, _, ok := p.nstring()
		if !ok {
			return nil, false
		}
		if len(fields) < maxIDFields && len(key) <= 30 && len(val) <= 1024 {
			fields[strings.ToLower(key)] = val
		}
	}
}

// handleID answers ID, records what the client said in info and logs its
// name and version.
func handleID(out []byte, tag string, args []byte, info *ConnInfo, cfg Config, log *slog.Logger) []byte {
	fields, ok := parseID(args)
	if !ok {
		return imaperr.Format(out, tag, &imap.StatusResponse{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Syntax: ID NIL or ID (field value ...)"})
	}
	if fields != nil {
		info.ClientID = fields
		log.Info("client ID", "name", fields["name"], "version", fields["version"], "os", fields["os"])
	}
	out = append(out, "* ID ("...)
	out = quote(out, "name")
	out = append(out, ' ')
	out = quote(out, cfg.ServerName)
	out = append(out, ' ')
	out = quote(out, "version")
	out = append(out, ' ')
	out = quote(out, cfg.Version)
	if cfg.NodeName != "" {
		out = append(out, ' ')
		out = quote(out, "environment")
		out = append(out, ' ')
		out = quote(out, "node="+cfg.NodeName)
	}
	out = append(out, ")\r\n"...)
	return imaperr.Format(out, tag, &imap.StatusResponse{Type: imap.StatusResponseTypeOK, Text: "ID completed"})
}
