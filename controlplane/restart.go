package main

import (
	"time"
)

// restartPolicy decides whether a component that exited on its own is started again, and
// after how long: a short backoff that doubles while it keeps exiting, and a limit on exits in a
// window so that a component that cannot run (bad flags, a port taken) still stops the control
// plane, as it did before restarts existed, instead of looping for ever.
type restartPolicy struct {
	initial  time.Duration
	max      time.Duration
	limit    int           // most exits within window that are still restarted
	window   time.Duration // exits older than this are forgotten
	stableAt time.Duration // a run this long resets the backoff
	exits    []time.Time
	backoff  time.Duration
}

func newRestartPolicy() *restartPolicy {
	return &restartPolicy{initial: 500 * time.Millisecond, max: 10 * time.Second, limit: 5, window: 2 * time.Minute, stableAt: time.Minute}
}

// next records an exit at now of a run that lasted ran, and returns how long to wait before the
// restart, or false when the component exited too often: then it is not restarted.
func (p *restartPolicy) next(now time.Time, ran time.Duration) (time.Duration, bool) {
	kept := p.exits[:0]
	for _, at := range p.exits {
		if now.Sub(at) < p.window {
			kept = append(kept, at)
		}
	}
	p.exits = append(kept, now)
	if len(p.exits) > p.limit {
		return 0, false
	}
	if ran >= p.stableAt || p.backoff == 0 {
		p.backoff = p.initial
	} else {
		p.backoff = min(2*p.backoff, p.max)
	}
	return p.backoff, true
}
