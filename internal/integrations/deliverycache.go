package integrations

import (
	"context"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/store"
)

// deliveryTTL is how long ingest trusts a cached integration and its opened secrets. Every
// delivery would otherwise read the integration and decrypt its secrets; a change made on
// another replica (a rotated secret, a deleted integration) takes effect within this time,
// one made through this process's API at once (Forget).
const deliveryTTL = time.Second

type verifier struct {
	rec     store.Integration
	fi      forge.Integration
	secrets []string
	at      time.Time
}

type routeEntry struct {
	recs []store.Integration
	at   time.Time
}

// ForDelivery returns an integration with its secrets opened, as ingest needs to verify a
// delivery, from a cache at most deliveryTTL old.
func (s *Service) ForDelivery(ctx context.Context, id string) (store.Integration, forge.Integration, []string, error) {
	now := s.now()
	s.mu.Lock()
	v, ok := s.verifiers[id]
	s.mu.Unlock()
	if ok && now.Sub(v.at) < deliveryTTL {
		return v.rec, v.fi, v.secrets, nil
	}
	rec, err := s.st.GetIntegration(ctx, id)
	if err != nil {
		return rec, forge.Integration{}, nil, err
	}
	fi, secrets, err := s.Open(rec)
	if err != nil {
		return rec, fi, nil, err
	}
	s.mu.Lock()
	s.verifiers[id] = verifier{rec: rec, fi: fi, secrets: secrets, at: now}
	s.mu.Unlock()
	return rec, fi, secrets, nil
}

// RouteDelivery returns the integrations of kind registered under a route key (host-level
// deliveries), from a cache at most deliveryTTL old.
func (s *Service) RouteDelivery(ctx context.Context, kind, key string) ([]store.Integration, error) {
	now := s.now()
	k := kind + "\x00" + key
	s.mu.Lock()
	e, ok := s.routes[k]
	s.mu.Unlock()
	if ok && now.Sub(e.at) < deliveryTTL {
		return e.recs, nil
	}
	recs, err := s.st.FindIntegrationsByRoute(ctx, kind, key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.routes[k] = routeEntry{recs: recs, at: now}
	s.mu.Unlock()
	return recs, nil
}
