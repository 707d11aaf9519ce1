//go:build e2e

package e2e

import (
	"sync"
	"time"
)

// poller calls f every interval in the background and keeps its failures,
// for tests that check an API keeps answering while they attack something.
type poller struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}

	mu    sync.Mutex
	polls int
	errs  []string
}

func startPoller(interval time.Duration, f func() error) *poller {
	p := &poller{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.stopCh:
				return
			case <-tick.C:
			}
			err := f()
			p.mu.Lock()
			p.polls++
			if err != nil {
				p.errs = append(p.errs, time.Now().Format(time.TimeOnly)+" "+err.Error())
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// stop ends the polling (once) and returns how many polls ran and the
// failures.
func (p *poller) stop() (polls int, errs []string) {
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polls, append([]string(nil), p.errs...)
}
