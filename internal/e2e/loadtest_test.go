package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLoadtestAgainstNode runs the loadtest tool, with its consistency
// checker, against a real node: every profile, a few users, a short run,
// and no violation allowed.
func TestLoadtestAgainstNode(t *testing.T) {
	n := Start(t, Options{})
	bin := filepath.Join(t.TempDir(), "loadtest")
	build := exec.Command("go", "build", "-o", bin, "./loadtest")
	build.Dir = moduleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./loadtest: %v\n%s", err, out)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(bin, "-addr", n.Addr, "-users", "6", "-user-format", "user%d", "-password", "password",
		"-mix", "heavy=2,idle=1,desktop2=1,webmail=1,mobile=1", "-duration", "8s", "-ramp", "500ms",
		"-think", "20ms", "-progress=false", "-json", report, "-seed", "3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loadtest failed: %v\n%s", err, out)
	}
	var res struct {
		Commands []struct {
			Command string            `json:"command"`
			Count   uint64            `json:"count"`
			Errors  map[string]uint64 `json:"errors"`
		} `json:"commands"`
		Violations []json.RawMessage `json:"violations"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Violations) != 0 {
		t.Fatalf("%d violations:\n%s", len(res.Violations), out)
	}
	counts := map[string]uint64{}
	for _, c := range res.Commands {
		counts[c.Command] = c.Count
		if c.Errors["BAD"] > 0 || c.Errors["network"] > 0 || c.Errors["other"] > 0 || c.Errors["timeout"] > 0 {
			t.Errorf("%s: errors %v", c.Command, c.Errors)
		}
	}
	for _, name := range []string{"APPEND", "STORE", "COPY", "MOVE", "EXPUNGE", "SEARCH", "SORT", "IDLE", "STATUS", "FETCH"} {
		if counts[name] == 0 {
			t.Errorf("no %s ran:\n%s", name, out)
		}
	}
	t.Logf("\n%s", out)
}
