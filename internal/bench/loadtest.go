package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// LoadReport is the part of loadtest's JSON report the bench reads.
type LoadReport struct {
	Elapsed    float64         `json:"elapsed_seconds"`
	Commands   []LoadCommand   `json:"commands"`
	Violations []LoadViolation `json:"violations"`
}

// LoadCommand is one row of loadtest's table.
type LoadCommand struct {
	Command string            `json:"command"`
	Count   uint64            `json:"count"`
	PerSec  float64           `json:"per_second"`
	P50     float64           `json:"p50_ms"`
	P90     float64           `json:"p90_ms"`
	P99     float64           `json:"p99_ms"`
	Max     float64           `json:"max_ms"`
	Errors  map[string]uint64 `json:"errors,omitempty"`
	// ErrorSamples is the first error of each kind (loadtest's report).
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// ErrorCount is the sum of the row's errors.
func (c LoadCommand) ErrorCount() uint64 {
	var n uint64
	for _, v := range c.Errors {
		n += v
	}
	return n
}

// LoadViolation is a broken promise loadtest's checker found.
type LoadViolation struct {
	User     string   `json:"user"`
	Conn     string   `json:"conn"`
	Mailbox  string   `json:"mailbox"`
	What     string   `json:"what"`
	Commands []string `json:"commands"`
}

// ParseLoadReport decodes loadtest's -json output.
func ParseLoadReport(data []byte) (*LoadReport, error) {
	var r LoadReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("loadtest report: %w", err)
	}
	return &r, nil
}

// Command returns the row named name, or false.
func (r *LoadReport) Command(name string) (LoadCommand, bool) {
	for _, c := range r.Commands {
		if c.Command == name {
			return c, true
		}
	}
	return LoadCommand{}, false
}

// moduleRoot finds the repository root from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildLoadtest builds ./loadtest into dir and returns the binary's path.
func BuildLoadtest(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "loadtest")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./loadtest")
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./loadtest: %w\n%s", err, out)
	}
	return bin, nil
}

// LoadRun is one loadtest run's parameters.
type LoadRun struct {
	Binary   string
	Addr     string
	Users    int
	Password string
	Mix      string
	Duration time.Duration
	Seed     int64
	// Src is loadtest's -src (source addresses), "" for the default.
	Src string
	// JSON is where loadtest writes its report.
	JSON string
}

// LoadResult is a finished run: the report (nil when loadtest did not
// write one), its exit code and its output.
type LoadResult struct {
	Report   *LoadReport
	ExitCode int
	Output   string
}

// RunLoadtest runs the loadtest binary. An exit code of 1 (violations) is
// no error: the report says what was wrong. Other failures return an
// error together with what is known.
func RunLoadtest(ctx context.Context, r LoadRun) (LoadResult, error) {
	args := []string{
		"-addr", r.Addr,
		"-users", strconv.Itoa(r.Users),
		"-user-format", "user%d",
		"-password", r.Password,
		"-mix", r.Mix,
		"-duration", r.Duration.String(),
		"-seed", strconv.FormatInt(r.Seed, 10),
		"-json", r.JSON,
		"-progress=false",
	}
	if r.Src != "" {
		args = append(args, "-src", r.Src)
	}
	// Generous: the run, its ramp and the clients' last commands.
	ctx, cancel := context.WithTimeout(ctx, r.Duration+3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Binary, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := LoadResult{Output: out.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	default:
		return res, fmt.Errorf("loadtest: %w", err)
	}
	data, rerr := os.ReadFile(r.JSON)
	if rerr == nil {
		rep, perr := ParseLoadReport(data)
		if perr != nil {
			return res, perr
		}
		res.Report = rep
	}
	if res.ExitCode != 0 && res.ExitCode != 1 {
		return res, fmt.Errorf("loadtest exited with %d: %s", res.ExitCode, tail(res.Output, 2000))
	}
	if res.Report == nil {
		return res, fmt.Errorf("loadtest wrote no report: %w", rerr)
	}
	return res, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
