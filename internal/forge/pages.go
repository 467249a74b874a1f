package forge

import (
	"context"
	"fmt"
	"sync"
)

// FetchPages fetches pages from…last with fetch, concurrently (at most concurrency pages in
// flight or fetched and waiting to be consumed), and hands each to fn in page order: a
// listing read page by page in order, without waiting a round trip per page. The first
// error — a page's or fn's — cancels the fetches still running and is returned; a ctx done
// before the end returns ctx's error, wrapped with op.
func FetchPages[T any](ctx context.Context, op string, from, last, concurrency int,
	fetch func(ctx context.Context, page int) (T, error), fn func(T) error) error {
	if last < from {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		page T
		err  error
	}
	results := make([]chan result, last-from+1)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for p := from; p <= last; p++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				page, err := fetch(ctx, p)
				results[p-from] <- result{page, err}
			}(p)
		}
	}()
	for p := from; p <= last; p++ {
		var r result
		select {
		case r = <-results[p-from]:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		<-slots // page p is consumed: let another fetch start
		if r.err != nil {
			return r.err
		}
		if err := fn(r.page); err != nil {
			return err
		}
	}
	return nil
}
