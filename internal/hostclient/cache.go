package hostclient

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Entry is a stored response for conditional requests: its validators, headers and body.
type Entry struct {
	ETag         string
	LastModified string
	Header       http.Header
	Body         []byte
}

// Cache stores responses for conditional GETs. scope separates integrations; key never holds
// a credential (see CacheKey). Implementations must be safe for concurrent use and must not
// keep references to what they are given or return.
type Cache interface {
	// Get returns the entry under scope and key; ok is false when there is none.
	Get(ctx context.Context, scope, key string) (e Entry, ok bool, err error)
	// Put stores e under scope and key, replacing any entry.
	Put(ctx context.Context, scope, key string, e Entry) error
}

// CacheKey is the cache key of a request: method, URL, and a SHA-256 of the Authorization
// and Accept headers, so that two credentials never share an entry and the key never
// reveals the credential. A credential in the URL (userinfo, or a query parameter such as
// GitLab's private_token) moves into the hash too.
func CacheKey(r *http.Request) string {
	h := sha256.New()
	h.Write([]byte(r.Header.Get("Authorization")))
	h.Write([]byte{0})
	h.Write([]byte(r.Header.Get("Accept")))
	u := *r.URL
	if u.User != nil {
		h.Write([]byte{0})
		h.Write([]byte(u.User.String()))
		u.User = nil
	}
	if u.RawQuery != "" {
		q := u.Query()
		names := slices.Sorted(maps.Keys(q)) // map order would make the hash vary
		for _, name := range names {
			if sensitiveParam(name) {
				h.Write([]byte{0})
				h.Write([]byte(name + "=" + strings.Join(q[name], ",")))
				q.Del(name)
			}
		}
		u.RawQuery = q.Encode()
	}
	return r.Method + " " + u.String() + " " + hex.EncodeToString(h.Sum(nil))
}

// sensitiveParam reports whether a query parameter name looks like it carries a credential.
func sensitiveParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "password", "secret", "signature", "sig", "key", "auth", "code"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// DefaultMemoryCacheEntries bounds NewMemoryCache.
const DefaultMemoryCacheEntries = 10000

// MemoryCache is an in-process Cache that evicts the least recently used entry beyond its
// bound.
type MemoryCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *memItem, most recent first
	items map[string]*list.Element
}

type memItem struct {
	key   string
	entry Entry
}

// NewMemoryCache returns an empty MemoryCache holding at most DefaultMemoryCacheEntries.
func NewMemoryCache() *MemoryCache {
	return &MemoryCache{max: DefaultMemoryCacheEntries, order: list.New(), items: map[string]*list.Element{}}
}

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, scope, key string) (Entry, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[scope+"\x00"+key]
	if !ok {
		return Entry{}, false, nil
	}
	c.order.MoveToFront(el)
	return cloneEntry(el.Value.(*memItem).entry), true, nil
}

// Put implements Cache.
func (c *MemoryCache) Put(_ context.Context, scope, key string, e Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := scope + "\x00" + key
	if el, ok := c.items[k]; ok {
		el.Value.(*memItem).entry = cloneEntry(e)
		c.order.MoveToFront(el)
		return nil
	}
	c.items[k] = c.order.PushFront(&memItem{key: k, entry: cloneEntry(e)})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*memItem).key)
	}
	return nil
}

// Len is the number of entries held.
func (c *MemoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func cloneEntry(e Entry) Entry {
	e.Header = e.Header.Clone()
	e.Body = bytes.Clone(e.Body)
	return e
}
