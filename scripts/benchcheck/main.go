//go:build unix

// Command benchcheck measures `ward-agent check` against the raw OS queries
// it runs. It replays the raw OS queries a support bundle recorded —
// the same commands with the same argv, the same files, directories and
// netlink reads — straight against this machine, with no parsing and no
// policy, and prints their wall and CPU time; then it runs the agent binary
// the same number of rounds, live and replaying the bundle, and prints its
// wall time, CPU time (with its children) and peak RSS.
//
//	go run ./scripts/benchcheck -n 10 -agent ./ward-agent BUNDLE.tar.gz
//
// It runs the recorded commands with os/exec directly, not through
// agent/source's Live: the point is the cost of the raw queries without
// Ward's runner. It is a measurement tool, never shipped in the agent.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/wardhq/ward/agent/source"
)

func main() {
	n := flag.Int("n", 10, "rounds")
	agent := flag.String("agent", "", "ward-agent binary to measure")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: benchcheck [-n N] [-agent BINARY] BUNDLE")
		os.Exit(3)
	}
	m, _, err := source.OpenBundle(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	live := source.NewLive()
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
	var self0, self1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	start := time.Now()
	cmds := 0
	for range *n {
		for _, r := range m.Records {
			switch r.Kind {
			case source.KindCommand:
				if r.Path == "" {
					continue
				}
				cmd := exec.Command(r.Path, r.Args...)
				cmd.Env = []string{"LC_ALL=C", "LANG=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
				_ = cmd.Run() // non-zero exits are part of the recorded query
				cmds++
			case source.KindFile:
				_, _ = live.ReadFile(ctx, r.Path, max(r.Limit, 1<<20))
			case source.KindDir:
				_, _ = live.ReadDir(ctx, r.Path)
			case source.KindStat:
				_, _ = live.Stat(ctx, r.Path)
			case source.KindNftables:
				_, _ = live.Nftables(ctx)
			}
		}
	}
	wall := time.Since(start) / time.Duration(*n)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
	syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	cpu := func(a, b syscall.Rusage) time.Duration {
		return time.Duration((b.Utime.Nano() + b.Stime.Nano()) - (a.Utime.Nano() + a.Stime.Nano()))
	}
	total := (cpu(before, after) + cpu(self0, self1)) / time.Duration(*n)
	fmt.Printf("raw queries: %d records (%d commands) per round, %d rounds: wall %v/round, cpu %v/round\n",
		len(m.Records), cmds / *n, *n, wall.Round(time.Millisecond), total.Round(time.Millisecond))
	if *agent == "" {
		return
	}
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"agent live check", []string{"check", "--json"}},
		{"agent replay (no OS queries)", []string{"check", "--json", "--replay", flag.Arg(0)}},
	} {
		var wallSum, cpuSum time.Duration
		var peak int64
		for range *n {
			cmd := exec.Command(*agent, mode.args...)
			t0 := time.Now()
			_ = cmd.Run() // exit 1/2 mean FAIL/UNKNOWN results, not a failure to run
			wallSum += time.Since(t0)
			ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if !ok {
				continue
			}
			cpuSum += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			peak = max(peak, ru.Maxrss)
		}
		// Maxrss (KiB) from wait4 is the largest of the process and its
		// children; the replay mode runs no children, so it is the agent's own.
		fmt.Printf("%s: wall %v/round, cpu %v/round (incl. children), peak RSS %.1f MiB\n",
			mode.name, (wallSum / time.Duration(*n)).Round(time.Millisecond),
			(cpuSum / time.Duration(*n)).Round(time.Millisecond), float64(peak)/1024)
	}
}
