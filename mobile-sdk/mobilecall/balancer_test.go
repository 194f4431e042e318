package mobilecall_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// lb is a load balancer in front of gateway nodes: each new connection
// goes to the node it points at then.
type lb struct {
	url  string
	dest atomic.Value // string: host:port
	// cut drops every connection open now, as a network change does.
	cut func()
}

func (b *lb) to(url string) { b.dest.Store(strings.TrimPrefix(url, "http://")) }

// balance starts a balancer pointing at url; it stops with the test.
func balance(t *testing.T, url string) *lb {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &lb{url: "http://" + ln.Addr().String()}
	b.to(url)
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns[c] = true
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			out, err := net.Dial("tcp", b.dest.Load().(string))
			if err != nil {
				in.Close()
				continue
			}
			track(in)
			track(out)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			wg.Go(func() { pipe(out, in) })
			wg.Go(func() { pipe(in, out) })
		}
	})
	b.cut = func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
		clear(conns)
	}
	t.Cleanup(func() {
		ln.Close()
		b.cut()
		wg.Wait()
	})
	return b
}
