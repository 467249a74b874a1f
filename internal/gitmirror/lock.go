package gitmirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// keyLock serializes the operations on one key inside this process; a channel rather than a
// mutex so that waiting honours a context.
type keyLock struct {
	ch   chan struct{}
	refs int // goroutines holding or waiting; the entry is dropped at zero
}

// acquire takes the key's in-process lock, then an exclusive flock on root/<key>.lock so that
// other processes sharing the root (a second replica on a shared volume) wait too. Waiting
// ends with ctx or after the operation timeout.
func (m *Manager) acquire(ctx context.Context, key string) (release func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()

	m.mu.Lock()
	kl, ok := m.locks[key]
	if !ok {
		kl = &keyLock{ch: make(chan struct{}, 1)}
		m.locks[key] = kl
	}
	kl.refs++
	m.mu.Unlock()
	drop := func() {
		m.mu.Lock()
		kl.refs--
		if kl.refs == 0 {
			delete(m.locks, key)
		}
		m.mu.Unlock()
	}

	select {
	case kl.ch <- struct{}{}:
	case <-ctx.Done():
		drop()
		return nil, fmt.Errorf("wait for the mirror lock: %w", ctx.Err())
	}
	f, err := m.flock(ctx, key)
	if err != nil {
		<-kl.ch
		drop()
		return nil, err
	}
	return func() {
		_ = f.Close() // closing the descriptor releases the flock
		<-kl.ch
		drop()
	}, nil
}

// flock polls a non-blocking flock, because a blocking one cannot be interrupted by ctx.
func (m *Manager) flock(ctx context.Context, key string) (*os.File, error) {
	if err := os.MkdirAll(m.root, 0o700); err != nil {
		return nil, fmt.Errorf("create mirror root: %w", err)
	}
	f, err := os.OpenFile(m.lockPath(key), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open mirror lock: %w", err)
	}
	wait := 10 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock mirror: %w", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("wait for another process's lock on the mirror: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 250*time.Millisecond)
	}
}
