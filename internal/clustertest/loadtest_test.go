package clustertest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadtestClusterMode runs the loadtest tool against three nodes as a
// layer-4 switch would (round robin over the nodes' addresses): no
// violation, every login served by the node the ring prefers, and the
// logins that entered at another node counted as proxied.
func TestLoadtestClusterMode(t *testing.T) {
	h := newHarness(t, []string{"127.0.0.41", "127.0.0.42", "127.0.0.43"}, 6)
	h.startAll()
	lt := filepath.Join(t.TempDir(), "loadtest")
	if out, err := exec.Command("go", "build", "-o", lt, "github.com/nfsimap/nfsimap/loadtest").CombinedOutput(); err != nil {
		t.Fatalf("build loadtest: %v\n%s", err, out)
	}
	var addrs []string
	for _, p := range h.nodes {
		addrs = append(addrs, p.imap)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	out, err := exec.Command(lt, "-addr", strings.Join(addrs, ","), "-pick", "roundrobin",
		"-users", "6", "-user-start", "0", "-user-format", "u%d", "-password", password,
		"-mix", "webmail=1,mobile=1", "-duration", "4s", "-ramp", "200ms", "-think", "20ms",
		"-progress=false", "-json", report).CombinedOutput()
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	var res struct {
		ServedBy   map[string]uint64 `json:"served_by"`
		Proxied    uint64            `json:"proxied_logins"`
		Violations []json.RawMessage `json:"violations"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Violations) > 0 {
		t.Fatalf("%d violations:\n%s", len(res.Violations), out)
	}
	names := map[string]bool{}
	for _, p := range h.nodes {
		names[p.name] = true
	}
	var total, cross uint64
	for pair, n := range res.ServedBy {
		entry, served, ok := strings.Cut(pair, " -> ")
		if !ok || !names[entry] || !names[served] {
			t.Errorf("served_by key %q is not \"entry node -> serving node\"", pair)
			continue
		}
		total += n
		if entry != served {
			cross += n
		}
	}
	if total == 0 {
		t.Fatalf("no logins reported:\n%s", out)
	}
	if cross != res.Proxied {
		t.Errorf("proxied_logins %d, but %d logins entered at another node than the serving one", res.Proxied, cross)
	}
	// Round robin over three nodes: about two logins in three enter at a
	// node that does not own the user.
	if res.Proxied == 0 || res.Proxied == total {
		t.Errorf("%d of %d logins proxied; round robin over 3 nodes should proxy some but not all", res.Proxied, total)
	}
	t.Logf("\n%s", out)
}
