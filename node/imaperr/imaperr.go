// Package imaperr turns the errors of nfsimap's parts into IMAP status
// replies, in one place: user mistakes become NO or BAD with a response
// code, server faults are logged with context and shown as [SERVERBUG] or
// [UNAVAILABLE].
package imaperr

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"

	"github.com/emersion/go-imap/v2"
)

// ErrUnavailable marks a temporary failure (spool not mounted, a lock held
// too long, the node shutting down). Wrap it with %w to get NO [UNAVAILABLE].
var ErrUnavailable = errors.New("service temporarily unavailable")

// Reply maps err to the status reply a client sees. An *imap.Error found
// with errors.As is returned as it is (the session's way to say "user
// mistake"). Temporary faults give NO [UNAVAILABLE]; anything else is a
// server fault: it is logged on logger (with the given attributes, which
// should name the command and user) and answered NO [SERVERBUG]. logger may
// be nil. Reply never returns nil for a non-nil err; for a nil err it
// returns nil.
func Reply(err error, logger *slog.Logger, attrs ...any) *imap.StatusResponse {
	if err == nil {
		return nil
	}
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		resp := imap.StatusResponse(*imapErr)
		if resp.Text == "" {
			resp.Text = "Command failed"
		}
		return &resp
	}
	if Temporary(err) {
		if logger != nil {
			logger.Warn("temporary failure", append(attrs, "err", err)...)
		}
		return &imap.StatusResponse{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeUnavailable,
			Text: "Temporary failure, try again later",
		}
	}
	if logger != nil {
		logger.Error("server fault", append(attrs, "err", err)...)
	}
	return &imap.StatusResponse{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeServerBug,
		Text: "Internal server error",
	}
}

// Temporary reports whether err is a fault worth retrying later: an
// ErrUnavailable, a deadline, a stale NFS handle, or a busy resource.
func Temporary(err error) bool {
	return errors.Is(err, ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ESTALE) ||
		errors.Is(err, syscall.EAGAIN) ||
		errors.Is(err, syscall.EBUSY)
}

// Format writes a status reply as one IMAP line (with CRLF) into dst and
// returns the extended slice. tag "" means untagged ("*").
func Format(dst []byte, tag string, resp *imap.StatusResponse) []byte {
	if tag == "" {
		tag = "*"
	}
	dst = append(dst, tag...)
	dst = append(dst, ' ')
	dst = append(dst, resp.Type...)
	dst = append(dst, ' ')
	if resp.Code != "" {
		dst = append(dst, '[')
		dst = append(dst, resp.Code...)
		dst = append(dst, ']', ' ')
	}
	text := resp.Text
	if text == "" {
		text = "done"
	}
	for i := 0; i < len(text); i++ {
		// Text must not break the line.
		if c := text[i]; c == '\r' || c == '\n' {
			dst = append(dst, ' ')
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, '\r', '\n')
}
