package repast_test

// Benchmarks against the real server of TestMain (run by load-tests/bench_clients.sh):
//
//	go test -run '^$' -bench . -benchtime 2000x
//
// client-cpu-us/op is this process's user+system CPU per call (getrusage), i.e. the
// client's own cost on top of the server, which runs in another process.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	repast "github.com/repast-dev/repast/clients/go"
)

func wideRequest(id int64) repast.OnlineRequest {
	features := make([]string, 50)
	for i := range features {
		features[i] = fmt.Sprintf("wide:w%02d", i)
	}
	return repast.OnlineRequest{Entities: []repast.Column{repast.Int64s("driver_id", id)}, Features: features}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, cpu0 time.Duration, wall0 time.Time) {
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "client-cpu-us/op")
	b.ReportMetric(float64(b.N)/time.Since(wall0).Seconds(), "calls/s")
}

// serverCPU is the CPU time used so far by `repast serve` and redis-server together, from
// /proc (clock ticks of 10 ms: meaningful over runs of a second or more).
func serverCPU(b *testing.B) time.Duration {
	var total time.Duration
	for _, pid := range []int{env.server.cmd.Process.Pid, env.redis.cmd.Process.Pid} {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatal(err)
		}
		// Fields after the command name (which may hold spaces): utime and stime are the
		// 12th and 13th of them.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		for _, f := range fields[11:13] {
			ticks, _ := strconv.ParseInt(f, 10, 64)
			total += time.Duration(ticks) * 10 * time.Millisecond
		}
	}
	return total
}

// One caller, one entity, 50 features: latency and the client's CPU per call.
func BenchmarkGetOnlineFeatures1x50(b *testing.B) {
	c := newClient(b)
	req := wideRequest(1001)
	ctx := context.Background()
	if _, err := c.GetOnlineFeatures(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		resp, err := c.GetOnlineFeatures(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := resp.Columns[1].Int64s(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0, wall0)
}

// 32 concurrent callers sharing one client: throughput, and the client's CPU per call.
func BenchmarkGetOnlineFeatures1x50Callers32(b *testing.B) {
	c := newClient(b)
	ctx := context.Background()
	if _, err := c.GetOnlineFeatures(ctx, wideRequest(1001)); err != nil {
		b.Fatal(err)
	}
	requests := make([]repast.OnlineRequest, 100)
	for i := range requests {
		requests[i] = wideRequest(int64(1001 + i))
	}
	callers := 32
	b.ResetTimer()
	cpu0, wall0, server0 := cpuTime(), time.Now(), serverCPU(b)
	work := make(chan int, b.N)
	for i := 0; i < b.N; i++ {
		work <- i
	}
	close(work)
	errs := make(chan error, callers)
	for g := 0; g < callers; g++ {
		go func() {
			var err error
			for i := range work {
				if _, err = c.GetOnlineFeatures(ctx, requests[i%100]); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for g := 0; g < callers; g++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	// The server and Redis share one CPU: near 1.0 here means the server is the limit.
	b.ReportMetric((serverCPU(b)-server0).Seconds()/time.Since(wall0).Seconds(), "server-cpus")
	reportCPU(b, cpu0, wall0)
}

// Floors for the figures above, same request and server: net/http alone (the body posted
// and read, nothing decoded), and a bare keep-alive TCP connection writing the request's
// bytes and reading the answer's. The client's own cost is what it adds to these.
func BenchmarkFloorNetHTTP1x50(b *testing.B) {
	body := []byte(`{"entities":{"driver_id":[1001]},"features":[` + quotedWide() + `]}`)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		resp, err := hc.Post(env.server.url+"/get-online-features", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	reportCPU(b, cpu0, wall0)
}

func BenchmarkFloorTCP1x50(b *testing.B) {
	body := `{"entities":{"driver_id":[1001]},"features":[` + quotedWide() + `]}`
	addr := strings.TrimPrefix(env.server.url, "http://")
	req := []byte("POST /get-online-features HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	buf := make([]byte, 64<<10)
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		length := -1
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := strings.CutPrefix(strings.ToLower(string(line)), "content-length: "); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if _, err := io.ReadFull(r, buf[:length]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0, wall0)
}

func quotedWide() string {
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf(`"wide:w%02d"`, i)
	}
	return strings.Join(names, ",")
}
