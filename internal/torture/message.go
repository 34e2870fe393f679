package torture

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// IDHeader is the header field that names a torture message. Its value is
// unique per delivery; copies keep it.
const IDHeader = "X-Torture-ID"

// maxHeaderScan bounds how much of a file ReadID reads looking for the ID.
const maxHeaderScan = 64 << 10

// buildMessage returns a small RFC 5322 message carrying id. Sizes vary so
// that reads cross page boundaries now and then.
func buildMessage(id string, rng *rand.Rand) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <%s@torture.invalid>\r\n", id)
	fmt.Fprintf(&b, "%s: %s\r\n", IDHeader, id)
	b.WriteString("From: torture <torture@example.invalid>\r\n")
	b.WriteString("To: user <user@example.invalid>\r\n")
	fmt.Fprintf(&b, "Subject: torture %s\r\n", id)
	b.WriteString("Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n")
	b.WriteString("\r\n")
	lines := 1 + rng.IntN(80)
	for i := range lines {
		fmt.Fprintf(&b, "line %d of %s: the quick brown fox jumps over the lazy dog\r\n", i, id)
	}
	return b.Bytes()
}

// ReadID returns the value of the X-Torture-ID header of the message in r
// ("" if the header part has none). Only the header part is read, at most
// 64 KiB.
func ReadID(r io.Reader) (string, error) {
	br := bufio.NewReader(io.LimitReader(r, maxHeaderScan))
	prefix := strings.ToLower(IDHeader) + ":"
	for {
		line, err := br.ReadString('\n')
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" && (err == nil || line != "") {
			return "", nil // end of header
		}
		if len(trimmed) > len(prefix) && strings.ToLower(trimmed[:len(prefix)]) == prefix {
			return strings.TrimSpace(trimmed[len(prefix):]), nil
		}
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("torture: reading header: %w", err)
		}
	}
}
