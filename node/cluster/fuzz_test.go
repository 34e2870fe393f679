package cluster

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzReadTagged feeds arbitrary peer output to the login reply reader:
// it must never panic, and a success must end with the tagged line.
func FuzzReadTagged(f *testing.F) {
	for _, s := range []string{
		"P2 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n",
		"* CAPABILITY IMAP4rev1\r\nP2 OK done\r\n",
		"* BYE shutting down\r\n",
		"+ \r\n",
		"P2 NO [AUTHENTICATIONFAILED] Authentication failed\r\n",
		"P2\r\n",
		"P2 \n",
		"",
		"* OK " + strings.Repeat("x", 70000) + "\r\nP2 OK\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := readTagged(bufio.NewReaderSize(bytes.NewReader(b), 4096), authTag)
		if err != nil {
			return
		}
		if len(lines) == 0 {
			t.Fatal("success without lines")
		}
		if !bytes.Contains(b, []byte(authTag+" "+lines[len(lines)-1])) {
			t.Fatalf("tagged line %q not in the input", lines[len(lines)-1])
		}
	})
}
