package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is the whole machine's CPU time by state, in clock ticks, from the first line of
// Linux's /proc/stat (zero elsewhere). A server's own CPU (its rusage) leaves out what the
// kernel does for it outside its threads' accounted time — softirq work such as loopback
// TCP and block I/O completions — and says nothing of the time the cores sat idle. The
// machine's counters during a server's rounds show both.
type cpuTimes struct {
	busy    int64 // user, nice, system, irq and softirq
	softirq int64
	idle    int64 // idle and iowait
	steal   int64 // what the hypervisor gave to others while this VM's CPUs had work
}

// clockTick is the unit of /proc/stat's counters (USER_HZ, 100 on every Linux build Go runs on).
const clockTick = 10 * time.Millisecond

func readCPUTimes() cpuTimes {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return cpuTimes{}
	}
	return parseCPUTimes(line)
}

// parseCPUTimes reads /proc/stat's "cpu" line; zero when it is not one.
func parseCPUTimes(line string) cpuTimes {
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return cpuTimes{}
	}
	var v [7]int64 // user nice system idle iowait irq softirq
	for i := range v {
		var err error
		if v[i], err = strconv.ParseInt(fields[i+1], 10, 64); err != nil {
			return cpuTimes{}
		}
	}
	c := cpuTimes{busy: v[0] + v[1] + v[2] + v[5] + v[6], softirq: v[6], idle: v[3] + v[4]}
	if len(fields) > 8 { // steal, since Linux 2.6.11
		if st, err := strconv.ParseInt(fields[8], 10, 64); err == nil {
			c.steal = st
		}
	}
	return c
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{busy: c.busy - o.busy, softirq: c.softirq - o.softirq, idle: c.idle - o.idle, steal: c.steal - o.steal}
}

func (c cpuTimes) add(o cpuTimes) cpuTimes {
	return cpuTimes{busy: c.busy + o.busy, softirq: c.softirq + o.softirq, idle: c.idle + o.idle, steal: c.steal + o.steal}
}

// stealShare is the share of the machine's time its hypervisor gave to others: 0 on bare
// metal, and when there are no counters.
func (c cpuTimes) stealShare() float64 {
	total := c.busy + c.idle + c.steal
	if total <= 0 {
		return 0
	}
	return float64(c.steal) / float64(total)
}

// describe says how busy the machine was and how much of its CPU each of n deliveries took,
// everything that ran included (the load generator, the kernel); "n/a" without /proc/stat.
func (c cpuTimes) describe(n int64) string {
	total := c.busy + c.idle
	if total <= 0 || n <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%% busy (softirq %.0f%%), %s per delivery",
		100*float64(c.busy)/float64(total), 100*float64(c.softirq)/float64(total),
		(time.Duration(c.busy) * clockTick / time.Duration(n)).Round(time.Microsecond))
}
