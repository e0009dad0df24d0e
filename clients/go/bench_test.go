package repast_test

// Benchmarks against the real server of TestMain (run by load-tests/bench_clients.sh):
//
//	go test -run '^$' -bench . -benchtime 2000x
//
// client-cpu-us/op is this process's user+system CPU per call (getrusage), i.e. the
// client's own cost on top of the server, which runs in another process.

import (
	"context"
	"fmt"
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
	callers := 32
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
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
				if _, err = c.GetOnlineFeatures(ctx, wideRequest(int64(1001+i%100))); err != nil {
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
	reportCPU(b, cpu0, wall0)
}
