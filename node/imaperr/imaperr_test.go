package imaperr

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestReply(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	userErr := fmt.Errorf("wrapped: %w", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"})
	cases := []struct {
		err  error
		want string
	}{
		{userErr, "a NO [TRYCREATE] No such mailbox\r\n"},
		{fmt.Errorf("uidlist: %w", syscall.ESTALE), "a NO [UNAVAILABLE] Temporary failure, try again later\r\n"},
		{fmt.Errorf("spool: %w", ErrUnavailable), "a NO [UNAVAILABLE] Temporary failure, try again later\r\n"},
		{errors.New("disk on fire"), "a NO [SERVERBUG] Internal server error\r\n"},
	}
	for _, c := range cases {
		got := string(Format(nil, "a", Reply(c.err, log, "cmd", "SELECT")))
		if got != c.want {
			t.Errorf("%v: got %q, want %q", c.err, got, c.want)
		}
	}
	if !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), "cmd=SELECT") {
		t.Errorf("server fault not logged with context: %s", logs.String())
	}
	if Reply(nil, log) != nil {
		t.Error("nil error gave a reply")
	}
}

func TestFormatKeepsOneLine(t *testing.T) {
	got := string(Format(nil, "", &imap.StatusResponse{Type: imap.StatusResponseTypeBad, Text: "a\r\nb"}))
	if got != "* BAD a  b\r\n" {
		t.Errorf("%q", got)
	}
}
