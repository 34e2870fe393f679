package ring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Ring is this node's membership in the cluster (gossip through
// hashicorp/memberlist) and the current Snapshot of the members. All
// methods are safe for concurrent use.
type Ring struct {
	cfg    Config
	logger *slog.Logger
	ml     *memberlist.Memberlist

	snap atomic.Pointer[Snapshot]

	// metaMu guards meta, this node's published metadata. memberlist
	// reads it through delegate.NodeMeta, possibly while holding its own
	// locks, so nothing else is done under metaMu.
	metaMu sync.Mutex
	meta   nodeMeta

	// setStateMu serialises SetState calls (the metadata change and its
	// broadcast). It is not held by memberlist callbacks.
	setStateMu sync.Mutex

	// membersMu guards members and epoch. Held by the event callbacks,
	// which memberlist calls with its node lock held: never call into
	// memberlist under membersMu.
	membersMu sync.Mutex
	members   map[string]Member
	epoch     uint64

	// subsMu guards subs.
	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}

	ctx    context.Context // cancelled by Close; stops Join and the rejoin loop
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	// bgMu guards rejoinStarted and orders starting a goroutine against
	// Close.
	bgMu          sync.Mutex
	rejoinStarted bool

	// lifeMu is held for reading by calls into memberlist that must not
	// overlap its Shutdown (Leave panics after it); Close holds it for
	// writing. closed is set under the write lock.
	lifeMu sync.RWMutex
	closed bool

	closeOnce sync.Once
	closeErr  error

	// leaving is set by Leave; leftSelf is closed (once, by the event
	// callback) when memberlist has recorded this node's own departure.
	leaving      atomic.Bool
	leftSelf     chan struct{}
	leftSelfOnce sync.Once
}

// ErrClosed is returned by operations on a closed Ring.
var ErrClosed = errors.New("ring: closed")

// ErrBroadcastTimeout is returned by SetState and Leave when their news
// was not sent to enough nodes in time. The change is in effect locally
// and spreads with later gossip.
var ErrBroadcastTimeout = errors.New("ring: timeout waiting for the broadcast")

// New starts gossip listeners for this node (it binds the gossip port)
// and returns a Ring whose snapshot holds only this node, in state alive.
// Call Join to meet the other nodes and Close to stop. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	key, _ := cfg.secretKey() // checked by Validate

	if cfg.Profile == "" {
		cfg.Profile = ProfileLAN
	}
	var mlc *memberlist.Config
	if cfg.Profile == ProfileLocal {
		mlc = memberlist.DefaultLocalConfig()
		mlc.TCPTimeout = time.Second
		mlc.ProbeInterval = 200 * time.Millisecond
		mlc.ProbeTimeout = 100 * time.Millisecond
		mlc.GossipInterval = 20 * time.Millisecond
		mlc.SuspicionMult = 3
		mlc.SuspicionMaxTimeoutMult = 3
		mlc.PushPullInterval = time.Second
		mlc.GossipToTheDeadTime = 2 * time.Second
	} else {
		mlc = memberlist.DefaultLANConfig()
	}
	mlc.Name = cfg.NodeName
	mlc.BindAddr = cfg.BindAddr
	if mlc.BindAddr == "" {
		mlc.BindAddr = "0.0.0.0"
	}
	mlc.BindPort = cfg.BindPort
	mlc.AdvertiseAddr = cfg.AdvertiseAddr
	mlc.AdvertisePort = cfg.AdvertisePort
	if mlc.AdvertisePort == 0 {
		mlc.AdvertisePort = cfg.BindPort
	}
	mlc.SecretKey = key
	mlc.Label = cfg.ClusterLabel
	mlc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mlc.Logger = newMemberlistLogger(logger.With("component", "memberlist"))

	r := &Ring{
		cfg:      cfg,
		logger:   logger,
		meta:     nodeMeta{State: StateAlive, Addr: cfg.InternalAddr, Version: cfg.Version},
		members:  make(map[string]Member),
		subs:     make(map[chan struct{}]struct{}),
		leftSelf: make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	empty, _ := NewSnapshot(nil)
	r.snap.Store(empty)
	mlc.Delegate = (*delegate)(r)
	mlc.Events = (*events)(r)

	// Create announces this node to itself, which calls events.NotifyJoin:
	// everything the callbacks use is set up above.
	ml, err := memberlist.Create(mlc)
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("ring: start gossip on %s:%d: %w", mlc.BindAddr, cfg.BindPort, err)
	}
	r.ml = ml
	logger.Info("ring started", "node", cfg.NodeName, "gossip", r.GossipAddr(), "internal_addr", cfg.InternalAddr,
		"profile", cfg.Profile, "encrypted", key != nil)
	return r, nil
}

// Name returns this node's name.
func (r *Ring) Name() string { return r.cfg.NodeName }

// GossipAddr returns the "ip:port" this node advertises for gossip (with
// the port the system chose when BindPort was 0).
func (r *Ring) GossipAddr() string {
	return r.ml.LocalNode().Address()
}

// Snapshot returns the current snapshot. It never returns nil and takes
// no lock; the snapshot does not change (a membership change publishes a
// new one).
func (r *Ring) Snapshot() *Snapshot { return r.snap.Load() }

// HealthScore is memberlist's awareness score: 0 is healthy, higher means
// this node has trouble reaching others in time.
func (r *Ring) HealthScore() int { return r.ml.GetHealthScore() }

// Subscribe returns a channel that receives a value after each change of
// the snapshot. Notifications coalesce: the channel holds at most one, so
// a slow reader sees one wake-up for many changes and must then read
// Snapshot. The sender never blocks. Call cancel to stop receiving; the
// channel is not closed.
func (r *Ring) Subscribe() (ch <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	r.subsMu.Lock()
	r.subs[c] = struct{}{}
	r.subsMu.Unlock()
	return c, func() {
		r.subsMu.Lock()
		delete(r.subs, c)
		r.subsMu.Unlock()
	}
}

// notify wakes all subscribers without blocking.
func (r *Ring) notify() {
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	for c := range r.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Join contacts the seeds and merges this node into their cluster. It
// retries with back-off until at least one seed answers, ctx is done or the
// ring is closed; the daemon runs it in a goroutine it owns. With no seeds
// it returns nil at once. After a restart, Join is also how a node comes
// back: the others see it alive again. When RejoinInterval is set, a
// successful Join starts a background rejoin loop stopped by Close.
func (r *Ring) Join(ctx context.Context) error {
	if r.ctx.Err() != nil {
		return ErrClosed
	}
	if len(r.cfg.Seeds) == 0 {
		return nil
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	unregister := context.AfterFunc(r.ctx, stop)
	defer unregister()

	wait := joinRetryMin
	for attempt := 1; ; attempt++ {
		n, err := r.ml.Join(r.cfg.Seeds)
		if n > 0 {
			r.logger.Info("ring joined", "seeds_reached", n, "members", r.ml.NumMembers(), "attempt", attempt)
			r.startRejoin()
			return nil
		}
		r.logger.Warn("ring join failed, retrying", "seeds", r.cfg.Seeds, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait + rand.N(wait/4+1))
		select {
		case <-ctx.Done():
			t.Stop()
			if r.ctx.Err() != nil {
				return fmt.Errorf("ring: join %v: %w (last error: %v)", r.cfg.Seeds, ErrClosed, err)
			}
			return fmt.Errorf("ring: join %v: %w (last error: %v)", r.cfg.Seeds, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, r.cfg.joinRetryMax())
	}
}

// JoinInBackground runs Join in a goroutine owned by the ring: it stops
// when ctx is done or at Close, and logs its outcome. Watch Subscribe or
// Snapshot to see the other members arrive.
func (r *Ring) JoinInBackground(ctx context.Context) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	r.wg.Go(func() {
		if err := r.Join(ctx); err != nil && !errors.Is(err, ErrClosed) {
			r.logger.Error("ring join gave up", "err", err)
		}
	})
}

// startRejoin starts the rejoin loop once.
func (r *Ring) startRejoin() {
	if r.cfg.RejoinInterval <= 0 {
		return
	}
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.ctx.Err() != nil || r.rejoinStarted {
		return
	}
	r.rejoinStarted = true
	r.wg.Go(func() {
		t := time.NewTicker(r.cfg.RejoinInterval)
		defer t.Stop()
		for {
			select {
			case <-r.ctx.Done():
				return
			case <-t.C:
			}
			n, err := r.ml.Join(r.cfg.Seeds)
			r.logger.Debug("ring rejoin", "seeds_reached", n, "err", err)
		}
	})
}

// SetState publishes this node's new state (alive or draining) to the
// cluster. It waits up to BroadcastTimeout for the news to be sent; on a
// timeout it returns ErrBroadcastTimeout, but the new state is in effect
// locally and spreads with later gossip.
func (r *Ring) SetState(state State) error {
	if !state.Valid() {
		return fmt.Errorf("ring: set state: %w: %s", ErrInvalidMember, state)
	}
	r.lifeMu.RLock()
	defer r.lifeMu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	r.setStateMu.Lock()
	defer r.setStateMu.Unlock()
	r.metaMu.Lock()
	r.meta.State = state
	r.metaMu.Unlock()
	// UpdateNode fails only by timing out.
	if err := r.ml.UpdateNode(r.cfg.broadcastTimeout()); err != nil {
		return fmt.Errorf("ring: publish state %s: %w (%v)", state, ErrBroadcastTimeout, err)
	}
	r.logger.Info("ring state changed", "node", r.cfg.NodeName, "state", state.String())
	return nil
}

// State returns the state this node publishes.
func (r *Ring) State() State {
	r.metaMu.Lock()
	defer r.metaMu.Unlock()
	return r.meta.State
}

// Leave tells the other nodes that this node goes away, so they drop it at
// once instead of waiting for failure detection, and waits until the news
// is sent, up to ctx's deadline or BroadcastTimeout (ErrBroadcastTimeout
// then; the others will still learn it by gossip). It returns as soon as
// no other member is alive any more (they all left, as when every node
// is stopped at once): there is nobody left to tell, and memberlist would
// otherwise wait for a broadcast that never goes out. Call Close after it.
func (r *Ring) Leave(ctx context.Context) error {
	r.lifeMu.RLock()
	defer r.lifeMu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	timeout := r.cfg.broadcastTimeout()
	if dl, ok := ctx.Deadline(); ok {
		// memberlist reads 0 as "wait forever".
		timeout = max(time.Until(dl), time.Millisecond)
	}
	// memberlist waits for the leave broadcast only while it sees a peer
	// alive when it starts; a peer that leaves after that takes itself
	// out of gossip, and with none left the broadcast never goes out. So
	// the wait runs in a goroutine and is given up when the last peer is
	// gone. Subscribe before, so no change is missed.
	changed, cancel := r.Subscribe()
	defer cancel()
	r.leaving.Store(true)
	done := make(chan error, 1)
	go func() { done <- r.ml.Leave(timeout) }()
	self, past := r.leftSelf, false
	for {
		select {
		case err := <-done:
			// memberlist's Leave fails only by timing out.
			if err != nil {
				return fmt.Errorf("ring: leave: %w (%v)", ErrBroadcastTimeout, err)
			}
			r.logger.Info("ring left", "node", r.cfg.NodeName)
			return nil
		case <-changed:
		case <-self:
			self, past = nil, true
		}
		// memberlist records this node's own departure after its check
		// that it is not shut down: only from then on may Close run while
		// its Leave still waits (that wait then ends at its timeout).
		if !past {
			continue
		}
		if r.ml.NumMembers() == 0 {
			r.logger.Info("ring left; no other member was alive to tell", "node", r.cfg.NodeName)
			return nil
		}
	}
}

// Close stops gossip without telling the others (they detect the node as
// failed unless Leave was called first), stops background goroutines and
// cancels a running Join. It waits for a running Leave or SetState.
// Calling it again returns the first result.
func (r *Ring) Close() error {
	r.closeOnce.Do(func() {
		r.bgMu.Lock()
		r.cancel()
		r.bgMu.Unlock()
		r.wg.Wait()
		r.lifeMu.Lock()
		defer r.lifeMu.Unlock()
		r.closed = true
		if err := r.ml.Shutdown(); err != nil {
			r.closeErr = fmt.Errorf("ring: shutdown: %w", err)
		}
	})
	return r.closeErr
}

// memberChanged records a member's new metadata (present) or its
// departure, rebuilds the snapshot and wakes subscribers. Called by
// memberlist with its node lock held, so it must not call into memberlist.
func (r *Ring) memberChanged(n *memberlist.Node, present bool) {
	r.membersMu.Lock()
	defer r.membersMu.Unlock()
	gossip := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	_, had := r.members[n.Name]
	if present {
		meta, err := decodeMeta(n.Meta)
		if err != nil {
			// A peer we cannot understand (newer format, corruption): it
			// gets no users until it publishes something we can read.
			r.logger.Warn("ring member has unreadable metadata; ignoring it", "node", n.Name, "gossip", gossip, "err", err)
			present = false
		} else {
			m := Member{Name: n.Name, Addr: meta.Addr, State: meta.State, Version: meta.Version, Gossip: gossip}
			if old, ok := r.members[n.Name]; ok && old == m {
				return // nothing the ring uses changed
			}
			r.members[n.Name] = m
			r.logger.Info("ring member up", "node", m.Name, "addr", m.Addr, "state", m.State.String(), "version", m.Version, "gossip", gossip)
		}
	}
	if !present {
		if !had {
			return
		}
		delete(r.members, n.Name)
		r.logger.Info("ring member gone", "node", n.Name, "gossip", gossip)
	}
	r.rebuildLocked()
}

// rebuildLocked publishes a new snapshot of r.members. membersMu is held.
func (r *Ring) rebuildLocked() {
	ms := make([]Member, 0, len(r.members))
	for _, m := range r.members {
		ms = append(ms, m)
	}
	s, err := NewSnapshot(ms)
	if err != nil { // cannot happen: map keys are unique, states checked by decodeMeta
		r.logger.Error("ring snapshot rebuild failed", "err", err)
		return
	}
	r.epoch++
	s.epoch = r.epoch
	r.snap.Store(s)
	r.notify()
}

// delegate gives memberlist this node's metadata. memberlist calls it from
// its own goroutines, sometimes with its locks held.
type delegate Ring

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta returns the encoded metadata (it fits: Validate checked the
// sizes and State is always valid).
func (d *delegate) NodeMeta(limit int) []byte {
	r := (*Ring)(d)
	r.metaMu.Lock()
	meta := r.meta
	r.metaMu.Unlock()
	b, err := meta.encode()
	if err != nil || len(b) > limit {
		r.logger.Error("ring metadata does not fit", "limit", limit, "err", err)
		return nil
	}
	return b
}

// NotifyMsg ignores user messages (the ring sends none).
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts has nothing to broadcast.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState has no extra state to exchange.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores remote extra state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// events receives membership changes from memberlist, which calls it
// synchronously with its node lock held.
type events Ring

var _ memberlist.EventDelegate = (*events)(nil)

// NotifyJoin records a new or returning member.
func (e *events) NotifyJoin(n *memberlist.Node) { (*Ring)(e).memberChanged(n, true) }

// NotifyLeave drops a member that left or was declared dead.
func (e *events) NotifyLeave(n *memberlist.Node) {
	r := (*Ring)(e)
	if n.Name == r.cfg.NodeName && r.leaving.Load() {
		r.leftSelfOnce.Do(func() { close(r.leftSelf) })
	}
	r.memberChanged(n, false)
}

// NotifyUpdate records a member's new metadata.
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Ring)(e).memberChanged(n, true) }
