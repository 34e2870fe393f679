// Package ring tells every nfsimap node which node should serve a user.
//
// Membership is gossip through hashicorp/memberlist: each node publishes
// its internal IMAP address, its state (alive or draining) and its
// software version in its memberlist metadata. A Ring holds this node's
// membership and an immutable Snapshot of the members, rebuilt and swapped
// atomically on every change; subscribers get a coalesced wake-up.
//
// The user -> node mapping is rendezvous (highest random weight) hashing
// with xxHash (see Weight): every member gets a weight per user, and the
// user's preference list is the members by falling weight. A lookup
// hashes the user name once and then costs one 64-bit mix per member
// (each member's name is hashed once, when the snapshot is built). When a
// node joins or leaves, only the users whose first choice it is (or
// becomes) move, and the users of a departed node go to their previous
// second choice. Lookups read the snapshot without locks and allocate nothing.
//
// The package is a library: it reads no configuration files and logs
// through the *slog.Logger it is given.
package ring
