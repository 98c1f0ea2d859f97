// Command hostile is a test guest built with the Go SDK that misbehaves in the way its
// config (a JSON string) names, so the host's limits can be checked against a real Go runtime.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	gather "github.com/gather-agent/hostapi/go"
)

func init() { gather.Main(run) }

var sink [][]byte

func run() error {
	var mode string
	if err := gather.ConfigInto(&mode); err != nil {
		return err
	}
	switch mode {
	case "loop":
		n := 0
		for {
			n++
		}
	case "alloc":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "sleep":
		time.Sleep(time.Hour)
	case "goroutine":
		done := make(chan struct{})
		go func() {
			time.Sleep(time.Hour)
			close(done)
		}()
		<-done
	case "flood":
		line := strings.Repeat("x", 100)
		for i := 0; ; i++ {
			fmt.Println(line, i)
			fmt.Fprintln(os.Stderr, "flood", i)
		}
	case "exit3":
		os.Exit(3)
	case "panic":
		panic("boom")
	case "shortsleep":
		time.Sleep(20 * time.Millisecond)
		fmt.Println("slept")
		return gather.Record("go/slept.txt", []byte("ok"))
	}
	// Default: behave, and show where stdout and stderr go.
	fmt.Println("hello from stdout")
	fmt.Fprint(os.Stderr, "hello ")
	fmt.Fprintln(os.Stderr, "from stderr")
	nodes, err := gather.ListAll("/api/v1/nodes")
	if err != nil {
		return err
	}
	return gather.RecordJSON("go/summary.json", map[string]any{"nodes": len(nodes), "mode": mode})
}

func main() {}
