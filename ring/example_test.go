package ring_test

import (
	"fmt"

	"github.com/nfsimap/nfsimap/ring"
)

func ExampleSnapshot_Owners() {
	s, err := ring.NewSnapshot([]ring.Member{
		{Name: "imap01", Addr: "10.0.0.1:1143", State: ring.StateAlive},
		{Name: "imap02", Addr: "10.0.0.2:1143", State: ring.StateAlive},
		{Name: "imap03", Addr: "10.0.0.3:1143", State: ring.StateDraining},
		{Name: "imap04", Addr: "10.0.0.4:1143", State: ring.StateAlive},
		{Name: "imap05", Addr: "10.0.0.5:1143", State: ring.StateAlive},
	})
	if err != nil {
		panic(err)
	}
	buf := make([]ring.Member, 0, 2) // reuse it: lookups allocate nothing
	for _, m := range s.Owners("alice", 2, buf) {
		fmt.Println(m.Name, m.State)
	}
	m, _ := s.FirstAlive("alice")
	fmt.Println("served by", m.Name)
	// Output:
	// imap03 draining
	// imap05 alive
	// served by imap05
}
