package server

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// benchPipeline sends b.N copies of req from conns connections, depth
// requests per write, and reads the replies (each reply is one line).
func benchPipeline(b *testing.B, req string, conns, depth int) {
	_, addr := startServer(b, Options{NoActiveExpiry: true})
	batch := []byte(strings.Repeat(req, depth))
	per := b.N / conns / depth
	if per == 0 {
		per = 1
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			br := bufio.NewReaderSize(nc, 64<<10)
			for j := 0; j < per; j++ {
				if _, err := nc.Write(batch); err != nil {
					b.Error(err)
					return
				}
				for k := 0; k < depth; k++ {
					if _, err := br.ReadSlice('\n'); err != nil && err != io.EOF {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkPingP16(b *testing.B) { benchPipeline(b, "*1\r\n$4\r\nPING\r\n", 50, 16) }
func BenchmarkPingP1(b *testing.B)  { benchPipeline(b, "*1\r\n$4\r\nPING\r\n", 50, 1) }

func BenchmarkSetP16(b *testing.B) {
	if !hasCommands("set") {
		b.Skip("no SET yet")
	}
	benchPipeline(b, "*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nval\r\n", 50, 16)
}

func BenchmarkZAddP16(b *testing.B) {
	if !hasCommands("zadd") {
		b.Skip("no ZADD yet")
	}
	benchPipeline(b, "*4\r\n$4\r\nZADD\r\n$6\r\nmyzset\r\n$1\r\n1\r\n$6\r\nmember\r\n", 50, 16)
}

func BenchmarkZAddP1(b *testing.B) {
	if !hasCommands("zadd") {
		b.Skip("no ZADD yet")
	}
	benchPipeline(b, "*4\r\n$4\r\nZADD\r\n$6\r\nmyzset\r\n$1\r\n1\r\n$6\r\nmember\r\n", 50, 1)
}

func BenchmarkGetP16(b *testing.B) {
	if !hasCommands("get") {
		b.Skip("no GET yet")
	}
	benchPipeline(b, "*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n", 50, 16)
}

func BenchmarkGetP1(b *testing.B) {
	if !hasCommands("get") {
		b.Skip("no GET yet")
	}
	benchPipeline(b, "*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n", 50, 1)
}

func BenchmarkSetP1(b *testing.B) {
	if !hasCommands("set") {
		b.Skip("no SET yet")
	}
	benchPipeline(b, "*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nval\r\n", 50, 1)
}
