// Interop driver for src/kubelet-api/spdy: plays kube-apiserver's side of an exec over SPDY
// with the real moby/spdystream client. Prints one JSON object per line; exits 1 on failure.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/moby/spdystream"
)

// bufConn reads through the bufio.Reader that parsed the 101, in case it read past it.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func report(key string, value any) {
	b, _ := json.Marshal(map[string]any{key: value})
	fmt.Println(string(b))
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: goclient <host:port> <stdin-bytes>")
		os.Exit(2)
	}
	var size int
	fmt.Sscan(os.Args[2], &size)
	if err := run(os.Args[1], size); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}

func run(addr string, size int) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/exec/ns/pod/c?command=cat&input=1&output=1", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Add("X-Stream-Protocol-Version", "v5.channel.k8s.io")
	req.Header.Add("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	if err := req.Write(conn); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade answered %s", resp.Status)
	}
	report("protocol", resp.Header.Get("X-Stream-Protocol-Version"))

	sc, err := spdystream.NewConnection(&bufConn{Conn: conn, r: br}, false)
	if err != nil {
		return err
	}
	go sc.Serve(spdystream.NoOpStreamHandler)

	// Like the apiserver: create each stream and wait for its SYN_REPLY before the next.
	create := func(headers http.Header) (*spdystream.Stream, error) {
		s, err := sc.CreateStream(headers, nil, false)
		if err != nil {
			return nil, err
		}
		return s, s.WaitTimeout(5 * time.Second)
	}
	errorStream, err := create(http.Header{"Streamtype": {"error"}})
	if err != nil {
		return fmt.Errorf("error stream: %w", err)
	}
	stdin, err := create(http.Header{"Streamtype": {"stdin"}})
	if err != nil {
		return fmt.Errorf("stdin stream: %w", err)
	}
	stdout, err := create(http.Header{"Streamtype": {"stdout"}})
	if err != nil {
		return fmt.Errorf("stdout stream: %w", err)
	}
	extra, err := create(http.Header{"Streamtype": {"data"}, "Port": {"8080"}, "Requestid": {"42"}})
	if err != nil {
		return fmt.Errorf("data stream: %w", err)
	}
	extra.Reset()

	if _, err := sc.Ping(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	report("ping", true)

	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31 + i>>9)
	}
	sum := sha256.Sum256(data)
	report("stdin_sha256", hex.EncodeToString(sum[:]))
	go func() {
		// One 1 MiB frame (a single Write is a single DATA frame in spdystream), then 32 KiB
		// frames as the apiserver's io.Copy produces; the struct hides bytes.Reader.WriteTo.
		split := min(1<<20, len(data))
		stdin.Write(data[:split])
		io.Copy(stdin, struct{ io.Reader }{bytes.NewReader(data[split:])})
		stdin.Close() // FIN
	}()

	echoed, err := io.ReadAll(stdout)
	if err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	report("stdout_match", bytes.Equal(echoed, data))
	status, err := io.ReadAll(errorStream)
	if err != nil {
		return fmt.Errorf("error stream: %w", err)
	}
	report("status", string(status))

	select {
	case <-sc.CloseChan():
		report("closed", true)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("server did not close the connection")
	}
	return nil
}
