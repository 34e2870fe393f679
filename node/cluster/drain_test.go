package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nfsimap/nfsimap/ring"
)

// steps records the drain's calls in order.
type steps struct {
	mu  sync.Mutex
	got []string
}

func (s *steps) add(step string) {
	s.mu.Lock()
	s.got = append(s.got, step)
	s.mu.Unlock()
}

func (s *steps) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

type fakeMembership struct{ s *steps }

func (m fakeMembership) SetState(st ring.State) error {
	m.s.add("state " + st.String())
	return nil
}

func (m fakeMembership) Leave(context.Context) error {
	m.s.add("leave")
	return ring.ErrBroadcastTimeout // tolerated
}

func TestDrainOrder(t *testing.T) {
	s := &steps{}
	byeStarted := make(chan time.Time, 1)
	d, err := NewDrainer(DrainConfig{
		Ring:     fakeMembership{s},
		NotReady: func() { s.add("not ready") },
		Grace:    200 * time.Millisecond,
		Bye: func(ctx context.Context) error {
			byeStarted <- time.Now()
			s.add("bye")
			if _, ok := ctx.Deadline(); !ok {
				t.Error("Bye has no deadline")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Draining() {
		t.Fatal("draining before Drain")
	}
	start := time.Now()
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- d.Drain(context.Background()) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if at := <-byeStarted; at.Sub(start) < 200*time.Millisecond {
		t.Errorf("BYE after %v, before the grace period", at.Sub(start))
	}
	want := []string{"not ready", "state draining", "bye", "leave"}
	if got := s.list(); !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	if !d.Draining() {
		t.Error("not draining after Drain")
	}
	select {
	case <-d.Done():
	default:
		t.Error("Done not closed")
	}
}

func TestDrainCutShort(t *testing.T) {
	s := &steps{}
	d, _ := NewDrainer(DrainConfig{Ring: fakeMembership{s}, Grace: time.Hour, Bye: func(context.Context) error { s.add("bye"); return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Drain(ctx) }()
	// Wait until the drain is in its grace period.
	deadline := time.Now().Add(5 * time.Second)
	for len(s.list()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("drain did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	// The drain goes on to the end.
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not end after the grace was cut")
	}
	if got := s.list(); !slices.Equal(got, []string{"state draining", "bye", "leave"}) {
		t.Errorf("steps %v", got)
	}
}
