package main

import (
	"testing"
)

func TestParseCPUTimes(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got := parseCPUTimes("cpu  171188 1086 64581 150334 6493 0 16608 1031 0 0\n")
	want := cpuTimes{busy: 171188 + 1086 + 64581 + 16608, softirq: 16608, idle: 150334 + 6493, steal: 1031}
	if got != want {
		t.Fatalf("parseCPUTimes = %+v, want %+v", got, want)
	}
	if got := parseCPUTimes("cpu 1 2 3 4 5 6 7\n"); got.busy != 1+2+3+6+7 || got.steal != 0 {
		t.Fatalf("a kernel without the steal column: %+v", got)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7"} {
		if got := parseCPUTimes(bad); got != (cpuTimes{}) {
			t.Errorf("parseCPUTimes(%q) = %+v, want zero", bad, got)
		}
	}
}

func TestCPUTimesDescribe(t *testing.T) {
	before := cpuTimes{busy: 1000, softirq: 100, idle: 500}
	after := cpuTimes{busy: 1180, softirq: 110, idle: 520} // 2 s on 2 CPUs: 180 busy ticks, 20 idle
	d := after.sub(before)
	// 1.8 s of CPU over 6,000 deliveries is 300 µs each.
	if got, want := d.describe(6000), "90% busy (softirq 5%), 300µs per delivery"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
	if got := d.add(d).describe(12000); got != "90% busy (softirq 5%), 300µs per delivery" {
		t.Errorf("two rounds added: %q", got)
	}
	if got := (cpuTimes{busy: 150, idle: 40, steal: 10}).stealShare(); got != 0.05 {
		t.Errorf("stealShare = %v, want 0.05", got)
	}
	if got := (cpuTimes{}).stealShare(); got != 0 {
		t.Errorf("stealShare without counters = %v, want 0", got)
	}
	if got := (cpuTimes{}).describe(10); got != "n/a" {
		t.Errorf("no counters: %q, want n/a", got)
	}
}
