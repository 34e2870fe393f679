package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	a := &ServerReport{Name: "dovecot",
		Load: &LoadSummary{Commands: []LoadCommand{
			{Command: "SELECT", PerSec: 100, P50: 1, P99: 4},
			{Command: "ALL", PerSec: 400, P50: 1, P99: 5},
		}},
		Logins:   &LoginResult{PerSec: 500, P50Ms: 10, P99Ms: 30},
		Idle:     &IdleResult{Target: 10, Reached: 10, PerConnRSS: 2000, PerConnPSS: 500, After: MemSnapshot{Procs: 12, ByComm: map[string]CommMemory{"imap": {Procs: 10, Memory: Memory{RSS: 20000, PSS: 5000}}}}},
		SpoolOps: []SpoolCalls{{Phase: PhaseStatusFolder, Commands: 100, Total: 300, BySyscall: map[string]int{"stat": 300}}},
		Sort:     &SortResult{Messages: 2000, SelectMs: 900, Commands: []SortTiming{{Command: SortCommands[0], FirstMs: 50, MedianMs: 20, Digest: "abc", Numbers: 2000}}},
	}
	b := &ServerReport{Name: "nfsimap",
		Load: &LoadSummary{ExitCode: 1, Commands: []LoadCommand{
			{Command: "SELECT", PerSec: 200, P50: 0.5, P99: 2, Errors: map[string]uint64{"NO": 2}},
			{Command: "APPEND", PerSec: 20, P50: 3, P99: 9},
			{Command: "ALL", PerSec: 800, P50: 0.5, P99: 3},
		}, Violations: []LoadViolation{{User: "user3", Conn: "user3#0", Mailbox: "lt-a", What: "message lost", Commands: []string{"APPEND lt-a", "FETCH 1:*"}}}},
		Logins:   &LoginResult{PerSec: 1000, P50Ms: 5, P99Ms: 15},
		SpoolOps: []SpoolCalls{{Phase: PhaseStatusFolder, Commands: 100, Total: 300, BySyscall: map[string]int{"stat": 300}}},
		Sort:     &SortResult{Messages: 2000, SelectMs: 450, Commands: []SortTiming{{Command: SortCommands[0], FirstMs: 40, MedianMs: 10, Digest: "abc", Numbers: 2000}}},
		Errors:   []string{"idle memory: reached 5 of 10\nsecond line"},
	}
	return &Report{Mode: "test", Started: time.Unix(1700000000, 0), Host: map[string]string{"cpus": "2"},
		Settings: map[string]string{"loadtest": "x"}, Servers: []*ServerReport{a, b}, Notes: []string{"a note"}}
}

func TestReportMarkdown(t *testing.T) {
	var sb strings.Builder
	sampleReport().Markdown(&sb)
	md := sb.String()
	for _, want := range []string{
		"| SELECT | 100 | 200 | 2.00 | 1.00 / 4.00 | 0.50 / 2.00 | 0.50 | 0.50 | 0 / 2 |",
		"| APPEND | - | 20.0 | - |",
		"| **ALL** | 400 | 800 | 2.00 |",
		"| logins/s | 500 | 1000 | 2.00 |",
		"| RSS per connection, KiB | 2000 | - | - |",
		"imap ×10 RSS 19.5 MiB PSS 4.9 MiB",
		"| " + PhaseStatusFolder + " | 3.00 (3.00) | 3.00 (3.00) | 1.00 | stat 300 | stat 300 |",
		"| first SELECT INBOX (builds the index) | 900 | 450 | 0.50 |",
		"| SORT (SUBJECT) UTF-8 ALL | 50.0 / 20.0 | 40.0 / 10.0 | 0.50 | yes (2000 / 2000 numbers) |",
		"same answer (by internal date)",
		"VIOLATION 1: user user3 conn user3#0 mailbox \"lt-a\": message lost",
		"loadtest against nfsimap exited with 1 (1 violations)",
		"- idle memory: reached 5 of 10\n  second line",
		"- a note",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// ALL is the last row of the loadtest table.
	if strings.Index(md, "**ALL**") < strings.Index(md, "| SELECT |") {
		t.Error("ALL is not after the commands")
	}
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	rep := sampleReport()
	for _, name := range []string{"r.md", "r2.json", "r3"} {
		out := filepath.Join(dir, name)
		if err := writeReport(rep, "# md\n", out); err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(strings.TrimSuffix(out, ".json"), ".md")
		js, err := os.ReadFile(base + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		if len(back.Servers) != 2 || back.Servers[1].Load.Violations[0].What != "message lost" {
			t.Errorf("%s: JSON round trip lost data: %+v", name, back.Servers)
		}
		mdPath := base + ".md"
		if name == "r3" {
			mdPath = out
		}
		if md, err := os.ReadFile(mdPath); err != nil || string(md) != "# md\n" {
			t.Errorf("%s: markdown %q, %v", name, md, err)
		}
	}
}

func TestParseLoadReport(t *testing.T) {
	data := []byte(`{"config":{},"elapsed_seconds":20.5,"commands":[{"command":"FETCH","count":10,"per_second":0.5,"p50_ms":1,"p90_ms":2,"p99_ms":3,"max_ms":4,"errors":{"NO":1,"network":2},"error_samples":{"network":"10:00:00.000: connection reset by peer"}}],"timeline":[],"violations":[{"user":"u","conn":"c","mailbox":"m","what":"w","commands":["x"]}]}`)
	r, err := ParseLoadReport(data)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := r.Command("FETCH")
	if !ok || c.ErrorCount() != 3 || r.Elapsed != 20.5 || len(r.Violations) != 1 {
		t.Errorf("%+v", r)
	}
	if c.ErrorSamples["network"] != "10:00:00.000: connection reset by peer" {
		t.Errorf("error samples %v", c.ErrorSamples)
	}
	var md strings.Builder
	(&Report{Servers: []*ServerReport{{Name: "dovecot"}, {Name: "nfsimap", Load: &LoadSummary{Commands: r.Commands}}}}).Markdown(&md)
	if !strings.Contains(md.String(), "FETCH network (2): 10:00:00.000: connection reset by peer") {
		t.Errorf("markdown lacks the error sample:\n%s", md.String())
	}
	if _, err := ParseLoadReport([]byte("{")); err == nil {
		t.Error("broken JSON accepted")
	}
}

func TestConfigs(t *testing.T) {
	for _, m := range []string{"quick", "full", " Full "} {
		c, err := ConfigFor(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	if _, err := ConfigFor("huge"); err == nil {
		t.Error("unknown mode accepted")
	}
	c := QuickConfig()
	c.SortRuns = 1
	c.Users = 0
	if err := c.Validate(); err == nil {
		t.Error("bad config accepted")
	}
}
