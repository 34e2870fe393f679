package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is everything one comparison measured. Servers[0] is the
// reference (Dovecot), Servers[1] the one compared with it (nfsimap);
// every ratio is Servers[1] / Servers[0].
type Report struct {
	Mode     string            `json:"mode"`
	Started  time.Time         `json:"started"`
	Took     float64           `json:"took_seconds"`
	Host     map[string]string `json:"host"`
	Spool    SpoolStats        `json:"spool"`
	Settings map[string]string `json:"settings"`
	Servers  []*ServerReport   `json:"servers"`
	Notes    []string          `json:"notes"`
}

// ServerReport is one server's results; a nil part was not measured.
type ServerReport struct {
	Name     string       `json:"name"`
	Load     *LoadSummary `json:"load,omitempty"`
	Logins   *LoginResult `json:"logins,omitempty"`
	Idle     *IdleResult  `json:"idle,omitempty"`
	SpoolOps []SpoolCalls `json:"spool_ops,omitempty"`
	Sort     *SortResult  `json:"sort,omitempty"`
	// Errors are parts that failed, with why.
	Errors []string `json:"errors,omitempty"`
}

// LoadSummary is a loadtest run as the report keeps it.
type LoadSummary struct {
	ExitCode   int             `json:"exit_code"`
	Elapsed    float64         `json:"elapsed_seconds"`
	Commands   []LoadCommand   `json:"commands"`
	Violations []LoadViolation `json:"violations,omitempty"`
	// Output is loadtest's printed output (its table and violations).
	Output string `json:"output,omitempty"`
}

// Failf records a failed part.
func (s *ServerReport) Failf(format string, args ...any) {
	s.Errors = append(s.Errors, fmt.Sprintf(format, args...))
}

// JSON renders the report as indented JSON.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return append(b, '\n'), nil
}

// ratio formats b/a; "-" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "-"
	}
	return fmt.Sprintf("%.2f", b/a)
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// table writes a markdown table.
func table(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "---:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

// Markdown writes the report as markdown: tables side by side, then
// violations and failures.
func (r *Report) Markdown(w io.Writer) {
	if len(r.Servers) != 2 {
		fmt.Fprintf(w, "report has %d servers, want 2\n", len(r.Servers))
		return
	}
	a, b := r.Servers[0], r.Servers[1]
	fmt.Fprintf(w, "## %s vs %s (%s bench, %s, %.0f s)\n\n", b.Name, a.Name, r.Mode, r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Took)
	fmt.Fprintf(w, "Ratios are %s / %s: above 1 means more throughput, or more latency, memory or system calls, for %s.\n\n", b.Name, a.Name, b.Name)
	keys := sortedKeys(r.Host)
	var host []string
	for _, k := range keys {
		host = append(host, k+" "+r.Host[k])
	}
	fmt.Fprintf(w, "Host: %s.  \n", strings.Join(host, ", "))
	fmt.Fprintf(w, "Spool: %d users, %d messages, %.1f MiB, generated in %.1f s; each server got its own copy.  \n",
		len(r.Spool.Users), r.Spool.Messages, float64(r.Spool.Bytes)/(1<<20), r.Spool.Took.Seconds())
	for _, k := range sortedKeys(r.Settings) {
		fmt.Fprintf(w, "%s: %s.  \n", k, r.Settings[k])
	}
	fmt.Fprintln(w)

	r.loadTable(w, a, b)
	r.loginTable(w, a, b)
	r.idleTable(w, a, b)
	r.spoolTable(w, a, b)
	r.sortTable(w, a, b)

	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "### Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
	for _, s := range r.Servers {
		if s.Load != nil && len(s.Load.Violations) > 0 {
			fmt.Fprintf(w, "### %s: %d loadtest violations (lost, duplicated or confused mail)\n\n```\n", s.Name, len(s.Load.Violations))
			for i, v := range s.Load.Violations {
				if i == 20 {
					fmt.Fprintf(w, "... %d more in the JSON report\n", len(s.Load.Violations)-i)
					break
				}
				fmt.Fprintf(w, "VIOLATION %d: user %s conn %s mailbox %q: %s\n", i+1, v.User, v.Conn, v.Mailbox, v.What)
				for _, c := range v.Commands {
					fmt.Fprintf(w, "    %s\n", c)
				}
			}
			fmt.Fprintf(w, "```\n\n")
		}
		if s.Load != nil {
			var samples []string
			for _, c := range s.Load.Commands {
				for _, k := range sortedKeys(c.ErrorSamples) {
					samples = append(samples, fmt.Sprintf("%s %s (%d): %s", c.Command, k, c.Errors[k], c.ErrorSamples[k]))
				}
			}
			if len(samples) > 0 {
				fmt.Fprintf(w, "### %s: loadtest errors, the first of each kind\n\n", s.Name)
				for _, m := range samples {
					fmt.Fprintf(w, "- %s\n", m)
				}
				fmt.Fprintln(w)
			}
		}
		if len(s.Errors) > 0 {
			fmt.Fprintf(w, "### %s: failed parts\n\n", s.Name)
			for _, e := range s.Errors {
				fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(e, "\n", "\n  "))
			}
			fmt.Fprintln(w)
		}
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func (r *Report) loadTable(w io.Writer, a, b *ServerReport) {
	if a.Load == nil && b.Load == nil {
		return
	}
	fmt.Fprintf(w, "### loadtest (%s)\n\n", r.Settings["loadtest"])
	rows := map[string][2]*LoadCommand{}
	var names []string
	for i, s := range []*ServerReport{a, b} {
		if s.Load == nil {
			continue
		}
		for j := range s.Load.Commands {
			c := &s.Load.Commands[j]
			pair, ok := rows[c.Command]
			if !ok {
				names = append(names, c.Command)
			}
			pair[i] = c
			rows[c.Command] = pair
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "ALL") != (names[j] == "ALL") {
			return names[j] == "ALL"
		}
		return names[i] < names[j]
	})
	head := []string{"command", a.Name + " ops/s", b.Name + " ops/s", "ratio",
		a.Name + " p50/p99 ms", b.Name + " p50/p99 ms", "p50 ratio", "p99 ratio", "errors " + a.Name + "/" + b.Name}
	var out [][]string
	for _, n := range names {
		pair := rows[n]
		get := func(c *LoadCommand) (ops, p50, p99 float64, errs string, lat string) {
			if c == nil {
				return math.NaN(), math.NaN(), math.NaN(), "-", "-"
			}
			return c.PerSec, c.P50, c.P99, fmt.Sprint(c.ErrorCount()), num(c.P50) + " / " + num(c.P99)
		}
		ao, a50, a99, ae, al := get(pair[0])
		bo, b50, b99, be, bl := get(pair[1])
		label := n
		if n == "ALL" {
			label = "**ALL**"
		}
		out = append(out, []string{label, num(ao), num(bo), ratio(ao, bo), al, bl, ratio(a50, b50), ratio(a99, b99), ae + " / " + be})
	}
	table(w, head, out)
	for _, s := range []*ServerReport{a, b} {
		if s.Load != nil && s.Load.ExitCode != 0 {
			fmt.Fprintf(w, "loadtest against %s exited with %d (%d violations).\n\n", s.Name, s.Load.ExitCode, len(s.Load.Violations))
		}
	}
}

func (r *Report) loginTable(w io.Writer, a, b *ServerReport) {
	if a.Logins == nil && b.Logins == nil {
		return
	}
	fmt.Fprintf(w, "### Logins (connect, LOGIN, LOGOUT over a fresh connection; %s)\n\n", r.Settings["logins"])
	get := func(l *LoginResult) (float64, float64, float64, string) {
		if l == nil {
			return math.NaN(), math.NaN(), math.NaN(), "-"
		}
		return l.PerSec, l.P50Ms, l.P99Ms, fmt.Sprint(l.Errors)
	}
	ar, a50, a99, ae := get(a.Logins)
	br, b50, b99, be := get(b.Logins)
	table(w, []string{"", a.Name, b.Name, "ratio"}, [][]string{
		{"logins/s", num(ar), num(br), ratio(ar, br)},
		{"p50 ms", num(a50), num(b50), ratio(a50, b50)},
		{"p99 ms", num(a99), num(b99), ratio(a99, b99)},
		{"errors", ae, be, ""},
	})
}

func (r *Report) idleTable(w io.Writer, a, b *ServerReport) {
	if a.Idle == nil && b.Idle == nil {
		return
	}
	fmt.Fprintf(w, "### Memory per idle connection (LOGIN, SELECT INBOX, IDLE; %s)\n\n", r.Settings["idle"])
	row := func(label string, f func(*IdleResult) float64) []string {
		av, bv := math.NaN(), math.NaN()
		if a.Idle != nil {
			av = f(a.Idle)
		}
		if b.Idle != nil {
			bv = f(b.Idle)
		}
		cells := []string{label, num(av), num(bv), ratio(av, bv)}
		if strings.HasPrefix(label, "connections") || strings.HasPrefix(label, "server processes") {
			for i, v := range []float64{av, bv} {
				if !math.IsNaN(v) {
					cells[1+i] = fmt.Sprintf("%.0f", v)
				}
			}
		}
		return cells
	}
	table(w, []string{"", a.Name, b.Name, "ratio"}, [][]string{
		row("connections reached", func(i *IdleResult) float64 { return float64(i.Reached) }),
		row("server processes after", func(i *IdleResult) float64 { return float64(i.After.Procs) }),
		row("RSS before, MiB", func(i *IdleResult) float64 { return float64(i.Before.Total.RSS) / 1024 }),
		row("RSS after, MiB", func(i *IdleResult) float64 { return float64(i.After.Total.RSS) / 1024 }),
		row("PSS after, MiB", func(i *IdleResult) float64 { return float64(i.After.Total.PSS) / 1024 }),
		row("RSS per connection, KiB", func(i *IdleResult) float64 { return i.PerConnRSS }),
		row("PSS per connection, KiB", func(i *IdleResult) float64 { return i.PerConnPSS }),
		row("seconds to open all", func(i *IdleResult) float64 { return i.OpenSeconds }),
	})
	for _, s := range []*ServerReport{a, b} {
		if s.Idle == nil {
			continue
		}
		var parts []string
		for _, comm := range sortedKeys(s.Idle.After.ByComm) {
			cm := s.Idle.After.ByComm[comm]
			parts = append(parts, fmt.Sprintf("%s ×%d RSS %.1f MiB PSS %.1f MiB", comm, cm.Procs, float64(cm.RSS)/1024, float64(cm.PSS)/1024))
		}
		fmt.Fprintf(w, "%s after (processes before: %d): %s.", s.Name, s.Idle.Before.Procs, strings.Join(parts, "; "))
		if s.Idle.Stopped != "" {
			fmt.Fprintf(w, " %s.", s.Idle.Stopped)
		}
		if s.Idle.Errors > 0 {
			fmt.Fprintf(w, " %d connections failed, first: %s.", s.Idle.Errors, s.Idle.FirstError)
		}
		fmt.Fprint(w, "  \n")
	}
	fmt.Fprintln(w)
}

func (r *Report) spoolTable(w io.Writer, a, b *ServerReport) {
	if a.SpoolOps == nil && b.SpoolOps == nil {
		return
	}
	fmt.Fprintf(w, "### Spool system calls per command (strace -f on the serving process; calls naming a path under the spool; %s)\n\n", r.Settings["spool_ops"])
	fmt.Fprintf(w, "Each cell: calls that may reach the file server (all calls, with lseek, epoll_ctl and fcntl on descriptor flags); the ratio is of the first number. "+
		"A command counts from its sending to the next command's, so work a server does after replying counts too. "+
		"The phases of unchanged mailboxes start after a pause (SpoolOpsPlan.Settle) following the last change: both servers read a directory again while its mtime is too young to trust.\n\n")
	find := func(s *ServerReport, phase string) *SpoolCalls {
		for i := range s.SpoolOps {
			if s.SpoolOps[i].Phase == phase {
				return &s.SpoolOps[i]
			}
		}
		return nil
	}
	var phases []string
	for _, s := range []*ServerReport{a, b} {
		for _, c := range s.SpoolOps {
			if !contains(phases, c.Phase) {
				phases = append(phases, c.Phase)
			}
		}
	}
	var rows [][]string
	for _, p := range phases {
		ca, cb := find(a, p), find(b, p)
		cell := func(c *SpoolCalls) (float64, string, string) {
			if c == nil {
				return math.NaN(), "-", "-"
			}
			filer, all := c.FilerPerCommand(), c.PerCommand()
			return filer, fmt.Sprintf("%s (%s)", num(filer), num(all)), TopSyscalls(c.BySyscall, 4)
		}
		av, as, at := cell(ca)
		bv, bs, bt := cell(cb)
		rows = append(rows, []string{p, as, bs, ratio(av, bv), at, bt})
	}
	table(w, []string{"command", a.Name, b.Name, "ratio", a.Name + " calls", b.Name + " calls"}, rows)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *Report) sortTable(w io.Writer, a, b *ServerReport) {
	if a.Sort == nil && b.Sort == nil {
		return
	}
	msgs := 0
	for _, s := range []*ServerReport{a, b} {
		if s.Sort != nil && s.Sort.Messages > msgs {
			msgs = s.Sort.Messages
		}
	}
	fmt.Fprintf(w, "### SORT and THREAD on a %d-message INBOX (first run / median of the others, ms)\n\n", msgs)
	find := func(s *ServerReport, cmd string) *SortTiming {
		if s.Sort == nil {
			return nil
		}
		for i := range s.Sort.Commands {
			if s.Sort.Commands[i].Command == cmd {
				return &s.Sort.Commands[i]
			}
		}
		return nil
	}
	var rows [][]string
	sel := func(s *ServerReport) float64 {
		if s.Sort == nil {
			return math.NaN()
		}
		return s.Sort.SelectMs
	}
	rows = append(rows, []string{"first SELECT INBOX (builds the index)", num(sel(a)), num(sel(b)), ratio(sel(a), sel(b)), ""})
	for _, cmd := range SortCommands {
		ta, tb := find(a, cmd), find(b, cmd)
		cell := func(t *SortTiming) (string, float64) {
			if t == nil {
				return "-", math.NaN()
			}
			if t.Error != "" {
				return "error: " + t.Error, math.NaN()
			}
			return num(t.FirstMs) + " / " + num(t.MedianMs), t.MedianMs
		}
		ca, ma := cell(ta)
		cb, mb := cell(tb)
		same := "-"
		if ta != nil && tb != nil && ta.Error == "" && tb.Error == "" {
			same = "no"
			if ta.Digest == tb.Digest {
				same = "yes"
			}
			same += fmt.Sprintf(" (%d / %d numbers)", ta.Numbers, tb.Numbers)
		}
		rows = append(rows, []string{cmd, ca, cb, ratio(ma, mb), same})
	}
	table(w, []string{"command", a.Name, b.Name, "median ratio", "same answer (by internal date)"}, rows)
}
