package netcut

import (
	"bufio"
	"net"
	"testing"
)

// echo serves a line echo on loopback and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

// TestCutAndRestore: through the proxy before a cut, refused and reset
// during it, through again after the restore on the same address.
func TestCutAndRestore(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	c := dial()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "before"); err != nil || got != "before" {
		t.Fatalf("before the cut: %q, %v", got, err)
	}
	for round := range 2 {
		p.Cut()
		if _, err := roundTrip(c, r, "during"); err == nil {
			t.Fatalf("round %d: a live connection still answers after the cut", round)
		}
		if c2, err := net.Dial("tcp", p.Addr()); err == nil {
			c2.Close()
			t.Fatalf("round %d: a new connection was accepted during the cut", round)
		}
		if err := p.Restore(); err != nil {
			t.Fatalf("round %d: restore: %v", round, err)
		}
		c = dial()
		r = bufio.NewReader(c)
		if got, err := roundTrip(c, r, "after"); err != nil || got != "after" {
			t.Fatalf("round %d: after the restore: %q, %v", round, got, err)
		}
	}
}
