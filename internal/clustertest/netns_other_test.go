//go:build !linux

package clustertest

import (
	"errors"
	"net"
	"time"
)

// dialIn needs Linux network namespaces; the partition test skips
// elsewhere (there is no /run/netns to make them in).
func dialIn(netns, network, addr string, timeout time.Duration) (net.Conn, error) {
	return nil, errors.New("network namespaces are Linux only")
}
