//go:build !linux

package deliver

import "net"

// peerClosed cannot look without blocking on this platform: a connection
// the provider closed while idle fails on use (outcome unknown), as it may
// with net/http too.
func peerClosed(net.Conn) bool { return false }
