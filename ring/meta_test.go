package ring

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []nodeMeta{
		{State: StateAlive, Addr: "10.0.0.1:1143", Version: "1.0.0"},
		{State: StateDraining, Addr: "[fe80::1]:1143"},
		{State: StateAlive, Addr: "h:1", Version: strings.Repeat("v", 300)},
	} {
		b, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", m, got, err)
		}
		// Later releases may append fields.
		if got, err := decodeMeta(append(b, 7, 7, 7)); err != nil || got != m {
			t.Fatalf("with trailing bytes: %+v, %v", got, err)
		}
	}
}

func TestMetaGolden(t *testing.T) {
	// Pin the wire format: nodes of different releases read each other.
	b, err := nodeMeta{State: StateDraining, Addr: "a:1", Version: "v2"}.encode()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 2, 3, 'a', ':', '1', 2, 'v', '2'}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded %v, want %v", b, want)
	}
}

func TestMetaErrors(t *testing.T) {
	if _, err := (nodeMeta{State: StateAlive, Addr: strings.Repeat("a", 600)}).encode(); err == nil {
		t.Error("oversized metadata encoded")
	}
	for _, b := range [][]byte{
		nil,
		{1},
		{2, 1, 1, 'a', 0},        // unknown format version
		{1, 9, 1, 'a', 0},        // unknown state
		{1, 1, 5, 'a'},           // address past the end
		{1, 1, 1, 'a'},           // version length missing
		{1, 1, 0, 0},             // empty address
		{1, 1, 0x80, 0x80, 0x80}, // unterminated length
	} {
		if _, err := decodeMeta(b); !errors.Is(err, ErrBadMeta) {
			t.Errorf("decodeMeta(%v) err = %v, want ErrBadMeta", b, err)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := nodeMeta{State: StateAlive, Addr: "10.1.2.3:1143", Version: "1.0"}.encode()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("error %v does not wrap ErrBadMeta", err)
			}
			return
		}
		// Whatever decodes must encode and decode to the same value.
		e, err := m.encode()
		if err != nil {
			if len(b) <= maxMetaSize {
				t.Fatalf("decoded %+v from %d bytes but cannot encode it: %v", m, len(b), err)
			}
			return
		}
		if m2, err := decodeMeta(e); err != nil || m2 != m {
			t.Fatalf("re-decode %+v: %+v, %v", m, m2, err)
		}
	})
}

func TestParseMemberlistLine(t *testing.T) {
	for _, tc := range []struct {
		in    string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5\n", slog.LevelDebug, "Stream connection from=127.0.0.1:5"},
		{"[INFO] memberlist: Marking node-b as failed\n", slog.LevelInfo, "Marking node-b as failed"},
		{"[WARN] memberlist: Was able to connect to x over TCP but UDP probes failed\n", slog.LevelWarn, "Was able to connect to x over TCP but UDP probes failed"},
		{"[ERR] memberlist: Failed to send ping: boom\n", slog.LevelError, "Failed to send ping: boom"},
		{"[ERROR] memberlist: x", slog.LevelError, "x"},
		{"plain line\n", slog.LevelInfo, "plain line"},
		{"[NOPE] memberlist: y", slog.LevelInfo, "[NOPE] memberlist: y"},
		{"", slog.LevelInfo, ""},
		{"[", slog.LevelInfo, "["},
	} {
		level, msg := parseMemberlistLine([]byte(tc.in))
		if level != tc.level || msg != tc.msg {
			t.Errorf("parse(%q) = %v %q, want %v %q", tc.in, level, msg, tc.level, tc.msg)
		}
	}
}

func TestLogBridge(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ml := newMemberlistLogger(l.With("component", "memberlist"))
	ml.Printf("[DEBUG] memberlist: hidden")
	ml.Printf("[WARN] memberlist: Refuting a suspect message (from: b)")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("debug line logged at info level: %s", out)
	}
	if !strings.Contains(out, `level=WARN msg="Refuting a suspect message (from: b)" component=memberlist`) {
		t.Errorf("warning not bridged: %s", out)
	}
}

func FuzzParseMemberlistLine(f *testing.F) {
	f.Add([]byte("[WARN] memberlist: x\n"))
	f.Add([]byte("[ERR]"))
	f.Add([]byte("]["))
	f.Fuzz(func(t *testing.T, b []byte) {
		level, msg := parseMemberlistLine(b)
		if len(msg) > len(b) {
			t.Fatalf("message longer than the line")
		}
		switch level {
		case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
		default:
			t.Fatalf("level %v", level)
		}
	})
}
