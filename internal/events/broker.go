package events

import "sync"

// Broker wakes stream readers in this process when events are committed. Readers always
// read from the store, so a reader on another replica (not woken) still sees every event on
// its next poll; the broker only saves the wait.
type Broker struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewBroker returns an empty broker.
func NewBroker() *Broker { return &Broker{subs: map[chan struct{}]struct{}{}} }

// Subscribe returns a channel that receives a value (coalesced) after each publish, and a
// function to stop.
func (b *Broker) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

// Publish wakes every subscriber without blocking.
func (b *Broker) Publish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
