package main

import (
	"testing"
	"time"
)

func TestRestartPolicyBacksOffThenGivesUp(t *testing.T) {
	p := newRestartPolicy()
	now := time.Unix(1000, 0)
	var delays []time.Duration
	for range 5 {
		d, ok := p.next(now, time.Second)
		if !ok {
			t.Fatalf("exit %d within the window was not restarted", len(delays)+1)
		}
		delays = append(delays, d)
		now = now.Add(d + time.Second)
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays %v, want %v", delays, want)
		}
	}
	if _, ok := p.next(now, time.Second); ok {
		t.Fatal("a sixth exit within two minutes was restarted: a crash loop would never stop the control plane")
	}
}

func TestRestartPolicyForgetsOldExitsAndResetsAfterAStableRun(t *testing.T) {
	p := newRestartPolicy()
	now := time.Unix(1000, 0)
	for range 5 {
		if _, ok := p.next(now, time.Second); !ok {
			t.Fatal("not restarted")
		}
	}
	// Three minutes later, after a long run: the old exits are out of the window, the backoff is short again.
	now = now.Add(3 * time.Minute)
	d, ok := p.next(now, 3*time.Minute)
	if !ok || d != 500*time.Millisecond {
		t.Fatalf("after a stable run: delay %v, restarted %v; want 500ms, true", d, ok)
	}
	if d, _ := p.next(now, time.Second); d != time.Second {
		t.Fatalf("the backoff doubles from the reset: got %v", d)
	}
}
