package host

import (
	"net"
	"syscall"
	"unsafe"
)

// peerClosed reports whether a TCP connection has left the ESTABLISHED
// state (the peer closed or reset it, or it was closed here).
func peerClosed(nc net.Conn) bool {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return true
	}
	const tcpEstablished = 1
	state, known := uint8(0), false
	err = raw.Control(func(fd uintptr) {
		var info syscall.TCPInfo
		n := uint32(unsafe.Sizeof(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&n)), 0)
		if errno == 0 {
			state, known = info.State, true
		}
	})
	if err != nil {
		return true // closed here
	}
	return known && state != tcpEstablished
}
