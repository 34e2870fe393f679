package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestErrorSamples: the report keeps the first error of each kind per
// command, in the JSON rows and under the text table.
func TestErrorSamples(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newStats(start)
	s.record("CONNECT", start, time.Millisecond, "", nil)
	s.record("CONNECT", start.Add(time.Second), time.Millisecond, errNetwork, errors.New("connection reset by peer"))
	s.record("CONNECT", start.Add(2*time.Second), time.Millisecond, errNetwork, errors.New("a later one"))
	s.record("FETCH", start.Add(3*time.Second), time.Millisecond, errNo, errors.New("NO [SERVERBUG] broken"))
	rows, _, _ := s.report(5 * time.Second)
	var connect *CommandReport
	for i := range rows {
		if rows[i].Command == "CONNECT" {
			connect = &rows[i]
		}
	}
	if connect == nil || connect.Errors["network"] != 2 || !strings.Contains(connect.ErrorSamples["network"], "connection reset by peer") {
		t.Fatalf("CONNECT row: %+v", connect)
	}
	var b strings.Builder
	writeTable(&b, rows)
	out := b.String()
	for _, want := range []string{"first error of each kind:", "CONNECT network at 03:04:06.000: connection reset by peer", "FETCH NO at 03:04:08.000: NO [SERVERBUG] broken"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "a later one") {
		t.Errorf("report shows a later error, not the first:\n%s", out)
	}
}
