// Command loadtest drives any IMAP server (nfsimap, Dovecot, Cyrus) the way
// real clients do, checks that it never loses or confuses mail, and reports
// throughput and latency per command.
//
//	go run ./loadtest -addr 127.0.0.1:1143 -users 100 -duration 1m
//
// The exit code is 1 when the checker found a violation, 2 on bad flags or
// when the run could not start.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := Run(ctx, cfg, stderr)
	writeTable(stdout, res.Commands)
	if len(res.ServedBy) > 0 {
		fmt.Fprintln(stdout, "\nlogins served (entry -> serving node):")
		keys := make([]string, 0, len(res.ServedBy))
		for k := range res.ServedBy {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "  %-40s %d\n", k, res.ServedBy[k])
		}
		if len(cfg.Addrs) > 1 {
			fmt.Fprintf(stdout, "proxied logins (served by another node than the entry node): %d\n", res.Proxied)
		}
	}
	if cfg.JSON != "" {
		if err := writeJSON(cfg.JSON, res); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
	}
	if cfg.HTML != "" {
		if err := writeHTML(cfg.HTML, res); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
	}
	if len(res.Violations) > 0 {
		writeViolations(stdout, res.Violations)
		fmt.Fprintf(stdout, "%d violations\n", len(res.Violations))
		return 1
	}
	if cfg.Check {
		fmt.Fprintln(stdout, "checker: no violations")
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addrs := fs.String("addr", strings.Join(cfg.Addrs, ","), "server address(es), comma separated; several are used like a layer-4 switch")
	fs.StringVar(&cfg.Pick, "pick", cfg.Pick, "how to spread connections over addresses: roundrobin or random")
	fs.StringVar(&cfg.TLS, "tls", cfg.TLS, "none, starttls or implicit")
	fs.BoolVar(&cfg.InsecureTLS, "insecure", cfg.InsecureTLS, "do not verify server certificates")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "number of users")
	fs.IntVar(&cfg.UserStart, "user-start", cfg.UserStart, "number of the first user")
	fs.StringVar(&cfg.UserFormat, "user-format", cfg.UserFormat, "user name format, with %d")
	fs.StringVar(&cfg.Password, "password", cfg.Password, "password of every user")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "clients per user")
	mix := fs.String("mix", "webmail=4,idle=2,desktop2=1,mobile=2,heavy=1", "profiles and weights: webmail, idle, desktop2, mobile, heavy")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the run")
	fs.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "spread client starts over this long")
	fs.DurationVar(&cfg.Think, "think", cfg.Think, "base pause between a client's steps")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "cap on commands per second over all clients (0: none)")
	fs.DurationVar(&cfg.CommandTimeout, "timeout", cfg.CommandTimeout, "timeout of one command")
	src := fs.String("src", "", "source addresses, e.g. 127.0.0.1-127.0.0.50 (default: the system's choice)")
	fs.BoolVar(&cfg.Check, "check", cfg.Check, "check consistency (exit 1 on a violation)")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.StringVar(&cfg.JSON, "json", "", "write the report as JSON to this file")
	fs.StringVar(&cfg.HTML, "html", "", "write a self-contained HTML plot to this file")
	fs.BoolVar(&cfg.Progress, "progress", cfg.Progress, "print a progress line every second")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Addrs = strings.Split(*addrs, ",")
	var err error
	if cfg.Mix, err = parseMix(*mix); err != nil {
		return cfg, err
	}
	if *src != "" {
		if cfg.SourceIPs, err = parseSourceIPs(*src); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// Result is what a run found.
type Result struct {
	Config     Config            `json:"config"`
	Elapsed    float64           `json:"elapsed_seconds"`
	Commands   []CommandReport   `json:"commands"`
	Timeline   []SecondReport    `json:"timeline"`
	ServedBy   map[string]uint64 `json:"served_by,omitempty"`
	Proxied    uint64            `json:"proxied_logins"`
	Violations []Violation       `json:"violations"`
}

// Run drives the servers for cfg.Duration (or until ctx ends) and returns
// the report. Progress lines go to progress when cfg.Progress is set.
func Run(ctx context.Context, cfg Config, progress io.Writer) Result {
	start := time.Now()
	r := &runner{
		cfg:     cfg,
		stats:   newStats(start),
		checker: newChecker(cfg.Check),
		limiter: newLimiter(cfg.Rate),
		rng:     rand.New(rand.NewSource(cfg.Seed)),
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	assign := assignProfiles(cfg.Mix, cfg.Users)
	total := cfg.Users * cfg.Conns
	var wg sync.WaitGroup
	for u := 0; u < cfg.Users; u++ {
		user := fmt.Sprintf(cfg.UserFormat, cfg.UserStart+u)
		for k := 0; k < cfg.Conns; k++ {
			idx := u*cfg.Conns + k
			name := fmt.Sprintf("%s#%d", user, k)
			rng := rand.New(rand.NewSource(cfg.Seed + int64(idx)*7919))
			delay := time.Duration(0)
			if total > 1 {
				delay = cfg.Ramp * time.Duration(idx) / time.Duration(total)
			}
			prof := profiles[assign[u]]
			wg.Add(1)
			go func() {
				defer wg.Done()
				if delay > 0 {
					t := time.NewTimer(delay)
					select {
					case <-t.C:
					case <-runCtx.Done():
						t.Stop()
						return
					}
				}
				prof(runCtx, r, user, name, rng)
			}()
		}
	}

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	if cfg.Progress {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-tick.C:
				cmds, errs := r.stats.totals()
				el := time.Since(start).Seconds()
				fmt.Fprintf(progress, "\r%5.0fs  conns %6d  commands %9d  %8.0f/s  errors %6d  violations %d   ",
					el, r.conns.Load(), cmds, float64(cmds)/el, errs, len(r.checker.all()))
			}
		}
		fmt.Fprintln(progress)
	} else {
		<-done
	}
	elapsed := time.Since(start)
	rows, secs, served := r.stats.report(elapsed)
	return Result{Config: cfg, Elapsed: elapsed.Seconds(), Commands: rows, Timeline: secs,
		ServedBy: served, Proxied: r.stats.proxiedLogins(), Violations: r.checker.all()}
}

func writeJSON(path string, res Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
