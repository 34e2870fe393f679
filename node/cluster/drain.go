package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nfsimap/nfsimap/ring"
)

// Membership is the part of *ring.Ring a drain uses.
type Membership interface {
	// SetState publishes this node's state to the cluster.
	SetState(ring.State) error
	// Leave tells the cluster this node goes away.
	Leave(ctx context.Context) error
}

// DrainConfig configures a Drainer.
type DrainConfig struct {
	// Ring is this node's membership; nil means no cluster (the drain
	// then only fails readiness and ends the sessions).
	Ring Membership
	// NotReady makes the node's readiness check fail (so layer-4 switches
	// stop sending new clients), e.g. httpapi.Handler.SetDraining(true).
	// nil: nothing to tell.
	NotReady func()
	// Grace is how long the node keeps serving its sessions after it was
	// marked draining, before it tells them BYE. Meanwhile peers route new
	// logins around it and switches stop sending clients. 0: no wait.
	Grace time.Duration
	// Bye tells every session BYE [UNAVAILABLE] (clients reconnect and
	// land elsewhere) and returns when they are gone or ctx ends, e.g. the
	// client and internal listeners' Shutdown. nil: nothing to end.
	Bye func(ctx context.Context) error
	// ByeTimeout bounds Bye. 0 means 30 s.
	ByeTimeout time.Duration
	// Logger receives the steps. nil: discard.
	Logger *slog.Logger
}

// Drainer takes a node out of service in order: draining in gossip and
// readiness off, a grace period, BYE to the sessions, leave the ring. It
// is what `nfsimap drain` and SIGTERM run. Safe for concurrent use.
type Drainer struct {
	cfg DrainConfig
	log *slog.Logger

	once sync.Once
	done chan struct{} // closed when the drain is over
	err  error         // set before done is closed

	mu       sync.Mutex // guards draining
	draining bool
}

// NewDrainer makes a Drainer.
func NewDrainer(cfg DrainConfig) (*Drainer, error) {
	if cfg.Grace < 0 || cfg.ByeTimeout < 0 {
		return nil, errors.New("cluster: negative drain duration")
	}
	if cfg.ByeTimeout == 0 {
		cfg.ByeTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Drainer{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}, nil
}

// Draining reports whether a drain has started.
func (d *Drainer) Draining() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining
}

// Done is closed when the drain is over.
func (d *Drainer) Done() <-chan struct{} { return d.done }

// Drain runs the drain once; later and concurrent calls wait for the first
// one and return its result. ctx bounds only the wait of this call: a
// drain once started runs to its end (ctx ending cuts the grace period
// short, which is what a second SIGTERM should do: cancel the context of
// the call that started it).
func (d *Drainer) Drain(ctx context.Context) error {
	d.once.Do(func() {
		d.mu.Lock()
		d.draining = true
		d.mu.Unlock()
		go func() {
			d.err = d.run(ctx)
			close(d.done)
		}()
	})
	select {
	case <-d.done:
		return d.err
	case <-ctx.Done():
		return fmt.Errorf("cluster: waiting for the drain: %w", ctx.Err())
	}
}

func (d *Drainer) run(ctx context.Context) error {
	start := time.Now()
	var errs []error
	d.log.Info("draining", "grace", d.cfg.Grace)
	if d.cfg.NotReady != nil {
		d.cfg.NotReady()
	}
	if d.cfg.Ring != nil {
		// On a broadcast timeout the state is in effect here and spreads
		// with later gossip: go on.
		if err := d.cfg.Ring.SetState(ring.StateDraining); err != nil {
			d.log.Warn("drain: publishing the draining state", "err", err)
			if !errors.Is(err, ring.ErrBroadcastTimeout) {
				errs = append(errs, err)
			}
		}
	}
	if d.cfg.Grace > 0 {
		t := time.NewTimer(d.cfg.Grace)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			d.log.Info("drain: grace period cut short")
		}
	}
	if d.cfg.Bye != nil {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ByeTimeout)
		err := d.cfg.Bye(bctx)
		cancel()
		if err != nil {
			d.log.Warn("drain: sessions had to be cut", "err", err)
		}
	}
	if d.cfg.Ring != nil {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := d.cfg.Ring.Leave(lctx)
		cancel()
		if err != nil {
			d.log.Warn("drain: leaving the ring", "err", err)
			if !errors.Is(err, ring.ErrBroadcastTimeout) {
				errs = append(errs, err)
			}
		}
	}
	d.log.Info("drained", "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}
