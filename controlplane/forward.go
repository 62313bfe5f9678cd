package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// tcpForwarder accepts on one address and relays every connection, byte for byte, to another.
// kube-apiserver has a single --bind-address; rather than 0.0.0.0 (which would also serve the
// machine's external interfaces), it stays on 127.0.0.1 and this relay serves the advertise
// address with the same port. TLS passes through untouched.
type tcpForwarder struct {
	listener net.Listener
	target   string
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startForwarder(listen, target string) (*tcpForwarder, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	f := &tcpForwarder{listener: l, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *tcpForwarder) accept() {
	defer f.wg.Done()
	for {
		conn, err := f.listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond) // e.g. EMFILE: back off instead of spinning
			continue
		}
		f.wg.Add(1)
		go f.relay(conn)
	}
}

func (f *tcpForwarder) relay(in net.Conn) {
	defer f.wg.Done()
	out, err := net.DialTimeout("tcp", f.target, 10*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !f.track(in, out) {
		return
	}
	defer f.untrack(in, out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the half-close on so request/response streams end as they would end directly.
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// track registers a relayed pair; false (both closed) when the forwarder is already closing.
func (f *tcpForwarder) track(a, b net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		a.Close()
		b.Close()
		return false
	}
	f.conns[a], f.conns[b] = struct{}{}, struct{}{}
	return true
}

func (f *tcpForwarder) untrack(a, b net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a.Close()
	b.Close()
	if f.conns != nil {
		delete(f.conns, a)
		delete(f.conns, b)
	}
}

// close stops accepting, cuts every relayed connection and waits for the relays to end.
func (f *tcpForwarder) close() {
	f.listener.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}
