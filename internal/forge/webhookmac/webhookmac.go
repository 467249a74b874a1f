// Package webhookmac computes the HMAC-SHA256 that GitHub, Gitea and Bitbucket Data Center
// sign webhook deliveries with, reusing each secret's keyed state across deliveries.
//
// hmac.New hashes the padded key twice (the inner and outer blocks) and allocates both
// digests for every delivery. A reset HMAC keeps those two states, so a verifier that keeps
// one per secret pays only for the body. The states are as secret as the key they come from;
// they stay in this process's memory, beside the decrypted secrets the integration cache
// already holds.
package webhookmac

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
	"sync/atomic"
)

// maxKeys bounds the secrets kept: past it the cache starts over, so that rotated-out
// secrets do not accumulate in a long-running process.
const maxKeys = 256

// Keys keeps reusable HMAC-SHA256 states per secret. Its zero value is ready to use and it is
// safe for concurrent use.
type Keys struct {
	pools sync.Map // secret -> *sync.Pool of hash.Hash keyed with it
	n     atomic.Int64
}

// Sum appends HMAC-SHA256(secret, msg) to out and returns the result.
func (k *Keys) Sum(out []byte, secret string, msg []byte) []byte {
	p := k.pool(secret)
	h, _ := p.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, []byte(secret))
	}
	h.Write(msg)
	out = h.Sum(out)
	h.Reset()
	p.Put(h)
	return out
}

func (k *Keys) pool(secret string) *sync.Pool {
	if p, ok := k.pools.Load(secret); ok {
		return p.(*sync.Pool)
	}
	if k.n.Add(1) > maxKeys {
		k.pools.Clear()
		k.n.Store(1)
	}
	p, _ := k.pools.LoadOrStore(secret, new(sync.Pool))
	return p.(*sync.Pool)
}

// Sum returns HMAC-SHA256(secret, msg) without keeping any state: for signing in tests and
// fakes, and wherever a secret is used once.
func Sum(secret string, msg []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(msg)
	return h.Sum(nil)
}
