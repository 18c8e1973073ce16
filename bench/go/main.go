// SPDX-License-Identifier: MIT

// go-bench: the fiber workloads of weft-bench (bench/weft-bench.c, issue 8)
// with goroutines, same names, sizes and output, for bench/compare.sh:
//
//	fiber_spawn_join  a goroutine starts 10,000 goroutines that do nothing
//	                  and waits for them with a sync.WaitGroup; ns per
//	                  spawn + join
//	fiber_spawn_many  the same, joined by weft-bench's latch: an atomic
//	                  countdown whose last decrement closes a channel
//	fiber_switch      one goroutine calls runtime.Gosched() 1,000,000
//	                  times: ns per yield (one suspend + resume through
//	                  the scheduler)
//	fiber_yield_many  200 goroutines call runtime.Gosched() 1,000 times
//	                  each
//	fiber_ping_pong   two goroutines send a uint64 back and forth over two
//	                  unbuffered channels, 100,000 round trips; ns per
//	                  round trip
//
// GOMAXPROCS is set to --workers. Each workload gets one warm-up iteration
// and --reps timed ones; the median is reported. Output: a table, then
//
//	bench: <workload> workers=<n> ops_per_sec=<f> ns_per_op=<f> reps=<n> runtime=go
//	bench: peak_rss_kib=<n>
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	numSpawn   = 10000   // fiber_spawn_*
	numYields  = 1000000 // fiber_switch
	yieldTasks = 200     // fiber_yield_many
	numYield   = 1000
	pingRounds = 100000 // fiber_ping_pong
)

// latch: weft-bench's countdown; the last countDown closes done.
type latch struct {
	rem  atomic.Int64
	done chan struct{}
}

func newLatch(n int64) *latch {
	l := &latch{done: make(chan struct{})}
	l.rem.Store(n)
	return l
}

func (l *latch) countDown() {
	if l.rem.Add(-1) == 0 {
		close(l.done)
	}
}

// onGoroutine runs f on a fresh goroutine (weft-bench's root fiber or task
// runs on a worker, not on main) and waits for it.
func onGoroutine(f func()) {
	done := make(chan struct{})
	go func() {
		f()
		close(done)
	}()
	<-done
}

func spawnJoin() {
	onGoroutine(func() {
		var wg sync.WaitGroup
		wg.Add(numSpawn)
		for i := 0; i < numSpawn; i++ {
			go wg.Done()
		}
		wg.Wait()
	})
}

func spawnMany() {
	onGoroutine(func() {
		l := newLatch(numSpawn)
		for i := 0; i < numSpawn; i++ {
			go l.countDown()
		}
		<-l.done
	})
}

func yieldN(n int) {
	for i := 0; i < n; i++ {
		runtime.Gosched()
	}
}

func fiberSwitch() {
	onGoroutine(func() { yieldN(numYields) })
}

func yieldMany() {
	l := newLatch(yieldTasks)
	for i := 0; i < yieldTasks; i++ {
		go func() {
			yieldN(numYield)
			l.countDown()
		}()
	}
	<-l.done
}

func pingPong() {
	onGoroutine(func() {
		ping, pong := make(chan uint64), make(chan uint64)
		done := make(chan struct{})
		go func() {
			for i := 0; i < pingRounds; i++ {
				pong <- <-ping + 1
			}
			close(done)
		}()
		var v uint64
		for i := 0; i < pingRounds; i++ {
			ping <- v
			if <-pong != v+1 {
				fmt.Fprintln(os.Stderr, "go-bench: fiber_ping_pong: wrong answer")
				os.Exit(1)
			}
			v += 2
		}
		<-done
	})
}

type workload struct {
	name string
	iter func()
	ops  float64
}

var workloads = []workload{
	{"fiber_spawn_join", spawnJoin, numSpawn},
	{"fiber_spawn_many", spawnMany, numSpawn},
	{"fiber_switch", fiberSwitch, numYields},
	{"fiber_yield_many", yieldMany, yieldTasks * numYield},
	{"fiber_ping_pong", pingPong, pingRounds},
}

type result struct {
	medianMs, minMs, maxMs float64
	opsPerSec, nsPerOp     float64
}

// median as bench_median in bench/bench_util.h: the mean of the middle
// two of an even count. Sorts v.
func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func run(w workload, reps int) result {
	ms := make([]float64, reps)
	w.iter() // warm-up
	for i := range ms {
		t0 := time.Now()
		w.iter()
		ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	med := median(ms)
	return result{
		medianMs:  med,
		minMs:     ms[0],
		maxMs:     ms[reps-1],
		opsPerSec: w.ops / (med / 1e3),
		nsPerOp:   med * 1e6 / w.ops,
	}
}

func peakRssKiB() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Maxrss
}

func main() {
	cpus := runtime.NumCPU()
	if cpus > 256 {
		cpus = 256
	}
	workers := flag.Int("workers", cpus, "worker threads: GOMAXPROCS (default: online CPUs)")
	reps := flag.Int("reps", 10, "timed iterations per workload, after one warm-up; the median is shown")
	filter := flag.String("filter", "", "run only workloads whose name contains it")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(),
			"usage: go-bench [--workers N] [--reps N] [--filter SUBSTR]\n\n"+
				"weft-bench's fiber workloads with goroutines.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 || *workers < 1 || *workers > 256 || *reps < 1 || *reps > 1000000 {
		flag.Usage()
		os.Exit(1)
	}
	runtime.GOMAXPROCS(*workers)

	var lines []string
	header := false
	for _, w := range workloads {
		if !strings.Contains(w.name, *filter) {
			continue
		}
		if !header {
			fmt.Printf("%-24s %7s %11s %14s %10s %10s %10s\n", "workload (go)",
				"workers", "median ms", "ops/s", "ns/op", "min ms", "max ms")
			header = true
		}
		r := run(w, *reps)
		fmt.Printf("%-24s %7d %11.3f %14.1f %10.1f %10.3f %10.3f\n", w.name,
			*workers, r.medianMs, r.opsPerSec, r.nsPerOp, r.minMs, r.maxMs)
		lines = append(lines, fmt.Sprintf("bench: %s workers=%d ops_per_sec=%.1f "+
			"ns_per_op=%.2f reps=%d runtime=go", w.name, *workers,
			r.opsPerSec, r.nsPerOp, *reps))
	}
	fmt.Println()
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Printf("bench: peak_rss_kib=%d\n", peakRssKiB())
}
