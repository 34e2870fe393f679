package ring

import (
	"fmt"
	"testing"
	"time"
)

// TestCrashDetectedAtTenNodes runs ten members with the production gossip
// timings (memberlist's LAN profile, the default), stops one without a
// leave, as a crash or a cut cable would, and checks that every survivor's
// ring has dropped it within 10 s: the time new logins may still be sent
// to the dead node's internal listener (where the connect fails and the
// next choice serves them at once).
func TestCrashDetectedAtTenNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("about 10 s of real gossip")
	}
	lan := func(c *Config) { c.Profile = ProfileLAN }
	first := startNode(t, "node-0", freePort(t), nil, lan)
	seeds := []string{first.GossipAddr()}
	nodes := []*testNode{first}
	all := []string{"node-0"}
	for i := 1; i < 10; i++ {
		name := fmt.Sprintf("node-%d", i)
		nodes = append(nodes, startNode(t, name, freePort(t), seeds, lan))
		all = append(all, name)
	}
	for _, n := range nodes {
		waitSnapshot(t, n.Ring, 20*time.Second, "all ten members", hasMembers(all...))
	}

	victim := nodes[7]
	crashed := time.Now()
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	survivors := append(append([]string{}, all[:7]...), all[8:]...)
	var slowest time.Duration
	for i, n := range nodes {
		if i == 7 {
			continue
		}
		waitSnapshot(t, n.Ring, 10*time.Second-time.Since(crashed), n.Name()+" to drop node-7", hasMembers(survivors...))
		slowest = max(slowest, time.Since(crashed))
	}
	t.Logf("all 9 survivors dropped the crashed member within %v", slowest.Round(time.Millisecond))
}
