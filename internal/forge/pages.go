package forge

import (
	"context"
	"fmt"
	"sync"
)

// InOrder fetches what each key keys yields, concurrently, and hands the results to fn in
// the keys' order: a listing read in order without waiting a round trip per part. At most
// concurrency fetches are in flight or done and waiting to be consumed. keys yields until
// yield returns false; its error comes after the results of the keys it yielded. The first
// error (keys', a fetch's or fn's) cancels the fetches still running and is returned; a ctx
// done before the end returns ctx's error, wrapped with op.
func InOrder[K, T any](ctx context.Context, op string, concurrency int,
	keys func(ctx context.Context, yield func(K) bool) error,
	fetch func(ctx context.Context, key K) (T, error), fn func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		v   T
		err error
	}
	slots := make(chan struct{}, max(concurrency, 1))
	// order holds one channel per key, in the keys' order; slots bounds it.
	order := make(chan chan result, max(concurrency, 1)+1)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		err := keys(ctx, func(k K) bool {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			ch := make(chan result, 1)
			order <- ch
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := fetch(ctx, k)
				ch <- result{v, err}
			}()
			return true
		})
		if err != nil {
			ch := make(chan result, 1)
			ch <- result{err: err}
			order <- ch // the slots taken bound order's length below its capacity
		}
	}()
	for ch := range order {
		var r result
		select {
		case r = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		if r.err != nil {
			return r.err
		}
		<-slots // consumed: let another fetch start
		if err := fn(r.v); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// FetchPages is InOrder over the pages from…last of a listing whose length is known.
func FetchPages[T any](ctx context.Context, op string, from, last, concurrency int,
	fetch func(ctx context.Context, page int) (T, error), fn func(T) error) error {
	pages := func(_ context.Context, yield func(int) bool) error {
		for p := from; p <= last; p++ {
			if !yield(p) {
				break
			}
		}
		return nil
	}
	return InOrder(ctx, op, concurrency, pages, fetch, fn)
}
