package bitbucketdc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bitbucketfake"
)

// recorder records the requests a client sends, as "METHOD path".
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// writes returns the non-GET requests recorded since the last call.
func (r *recorder) writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.seen {
		if !strings.HasPrefix(s, "GET ") {
			out = append(out, s)
		}
	}
	r.seen = nil
	return out
}

type hookEnv struct {
	*env
	c    forge.Client
	rec  *recorder
	repo forge.Repository
	spec forge.HookSpec
}

func newHookEnv(t *testing.T) *hookEnv {
	t.Helper()
	e := newEnv(t, bitbucketfake.Options{})
	tok := e.adminToken("alice", "PRJ")
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets"})
	rec := &recorder{base: e.fake.Client().Transport}
	c, err := bitbucketdc.New().Open(context.Background(), e.integration(tok), forge.Env{HTTP: &http.Client{Transport: rec}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &hookEnv{env: e, c: c, rec: rec, repo: forge.Repository{FullName: "PRJ/widgets"},
		spec: forge.HookSpec{URL: "https://forgeway.example.com/webhooks/bitbucket-dc/int_test", Secret: "s3cret"}}
}

func (h *hookEnv) ensure() []forge.Hook {
	h.t.Helper()
	hooks, err := h.c.EnsureHooks(context.Background(), h.repo, h.spec)
	if err != nil {
		h.t.Fatalf("EnsureHooks: %v", err)
	}
	return hooks
}

func (h *hookEnv) onlyHook() bitbucketfake.Hook {
	h.t.Helper()
	hooks := h.fake.Hooks("PRJ/widgets")
	if len(hooks) != 1 {
		h.t.Fatalf("%d hooks on the host, want 1: %+v", len(hooks), hooks)
	}
	return hooks[0]
}

func TestEnsureHooksCreatesOnceAndRepairs(t *testing.T) {
	h := newHookEnv(t)
	got := h.ensure()
	hk := h.onlyHook()
	wantEvents := slices.Sorted(slices.Values(bitbucketdc.HookEvents()))
	if hk.URL != h.spec.URL || hk.Secret != "s3cret" || !hk.Active || !hk.SSLVerificationRequired || !slices.Equal(hk.Events, wantEvents) || hk.Name != "Forgeway int_test" {
		t.Errorf("hook on the host: %+v", hk)
	}
	if len(got) != 1 || got[0].URL != h.spec.URL || !got[0].Active || !got[0].Healthy || got[0].ID == "" {
		t.Errorf("EnsureHooks = %+v", got)
	}
	if w := h.rec.writes(); len(w) != 1 || !strings.HasPrefix(w[0], "POST ") {
		t.Errorf("writes %v, want one POST", w)
	}

	t.Run("again changes nothing", func(t *testing.T) {
		h.ensure()
		if w := h.rec.writes(); len(w) != 0 {
			t.Errorf("writes %v, want none", w)
		}
	})

	for _, tc := range []struct {
		name  string
		spoil func(id int)
	}{
		{"disabled", func(id int) { h.fake.SetHookActive("PRJ/widgets", id, false) }},
		{"events changed", func(id int) {
			h.fake.DeleteHooks("PRJ/widgets")
			h.fake.AddHook("PRJ/widgets", bitbucketfake.Hook{Name: "Forgeway int_test", URL: h.spec.URL, Secret: "s3cret", Events: []string{"repo:refs_changed"}, Active: true, SSLVerificationRequired: true})
		}},
		{"secret changed", func(id int) {
			h.fake.DeleteHooks("PRJ/widgets")
			h.fake.AddHook("PRJ/widgets", bitbucketfake.Hook{Name: "Forgeway int_test", URL: h.spec.URL, Secret: "other", Events: bitbucketdc.HookEvents(), Active: true, SSLVerificationRequired: true})
		}},
		{"TLS check off", func(id int) {
			h.fake.DeleteHooks("PRJ/widgets")
			h.fake.AddHook("PRJ/widgets", bitbucketfake.Hook{Name: "Forgeway int_test", URL: h.spec.URL, Secret: "s3cret", Events: bitbucketdc.HookEvents(), Active: true})
		}},
	} {
		t.Run("repairs "+tc.name, func(t *testing.T) {
			tc.spoil(h.onlyHook().ID)
			before := h.onlyHook().ID
			h.rec.writes()
			got := h.ensure()
			hk := h.onlyHook()
			if hk.ID != before || !hk.Active || hk.Secret != "s3cret" || !hk.SSLVerificationRequired || !slices.Equal(hk.Events, wantEvents) {
				t.Errorf("hook after repair: %+v (id before %d)", hk, before)
			}
			if w := h.rec.writes(); len(w) != 1 || !strings.HasPrefix(w[0], "PUT ") {
				t.Errorf("writes %v, want one PUT", w)
			}
			if !got[0].Active || !got[0].Healthy {
				t.Errorf("EnsureHooks = %+v", got)
			}
		})
	}

	t.Run("deleted behind our back", func(t *testing.T) {
		h.fake.DeleteHooks("PRJ/widgets")
		h.ensure()
		h.onlyHook()
	})

	t.Run("duplicates removed", func(t *testing.T) {
		h.fake.AddHook("PRJ/widgets", bitbucketfake.Hook{Name: "copy", URL: h.spec.URL, Secret: "s3cret", Events: bitbucketdc.HookEvents(), Active: true, SSLVerificationRequired: true})
		h.rec.writes()
		h.ensure()
		h.onlyHook()
		if w := h.rec.writes(); len(w) != 1 || !strings.HasPrefix(w[0], "DELETE ") {
			t.Errorf("writes %v, want one DELETE", w)
		}
	})
}

func TestEnsureHooksInsecureAndOthersKept(t *testing.T) {
	h := newHookEnv(t)
	other := h.fake.AddHook("PRJ/widgets", bitbucketfake.Hook{Name: "CI", URL: "https://ci.example.com/hook", Events: []string{"repo:refs_changed"}, Active: true})
	h.spec.InsecureSkipTLS = true
	h.ensure()
	var mine int
	for _, hk := range h.fake.Hooks("PRJ/widgets") {
		if hk.URL == h.spec.URL {
			mine = hk.ID
			if hk.SSLVerificationRequired {
				t.Errorf("hook verifies TLS although asked not to: %+v", hk)
			}
		}
	}
	if err := h.c.RemoveHooks(context.Background(), h.repo, h.spec.URL); err != nil {
		t.Fatalf("RemoveHooks: %v", err)
	}
	left := h.fake.Hooks("PRJ/widgets")
	if len(left) != 1 || left[0].ID != other || mine == 0 {
		t.Errorf("hooks left %+v; want only the CI hook %d", left, other)
	}
	if err := h.c.RemoveHooks(context.Background(), h.repo, h.spec.URL); err != nil {
		t.Errorf("RemoveHooks again: %v", err)
	}
	if err := h.c.RemoveHooks(context.Background(), forge.Repository{FullName: "PRJ/gone"}, h.spec.URL); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("RemoveHooks on a missing repository: %v, want ErrNotFound", err)
	}
}

func TestRotateHookSecret(t *testing.T) {
	h := newHookEnv(t)
	rot := h.c.(forge.HookSecretRotator)
	// No hook yet: rotating creates it.
	if _, err := rot.RotateHookSecret(context.Background(), h.repo, h.spec); err != nil {
		t.Fatalf("RotateHookSecret: %v", err)
	}
	id := h.onlyHook().ID
	h.spec.Secret = "n3w"
	if _, err := rot.RotateHookSecret(context.Background(), h.repo, h.spec); err != nil {
		t.Fatalf("RotateHookSecret: %v", err)
	}
	if hk := h.onlyHook(); hk.Secret != "n3w" || hk.ID != id {
		t.Errorf("hook after rotation: %+v", hk)
	}
}

func TestHooksHealth(t *testing.T) {
	h := newHookEnv(t)
	var status struct {
		sync.Mutex
		code int
	}
	status.code = http.StatusAccepted
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status.Lock()
		defer status.Unlock()
		w.WriteHeader(status.code)
	}))
	defer receiver.Close()
	h.spec.URL = receiver.URL
	h.ensure()
	id := h.onlyHook().ID
	ctx := context.Background()

	check := func(wantHealthy bool, noteHas string) {
		t.Helper()
		hooks, err := h.c.Hooks(ctx, h.repo, receiver.URL)
		if err != nil {
			t.Fatalf("Hooks: %v", err)
		}
		if len(hooks) != 1 || hooks[0].Healthy != wantHealthy || !strings.Contains(hooks[0].Note, noteHas) {
			t.Errorf("Hooks = %+v; want healthy %v, note with %q", hooks, wantHealthy, noteHas)
		}
	}
	check(true, "") // never delivered

	h.fake.Ping("PRJ/widgets", id)
	h.fake.WaitDeliveries()
	check(true, "")

	status.Lock()
	status.code = http.StatusInternalServerError
	status.Unlock()
	h.clock.Add(time.Second)
	h.fake.Ping("PRJ/widgets", id)
	h.fake.WaitDeliveries()
	check(false, "500")

	status.Lock()
	status.code = http.StatusOK
	status.Unlock()
	h.clock.Add(time.Second)
	h.fake.Ping("PRJ/widgets", id)
	h.fake.WaitDeliveries()
	check(true, "")

	h.fake.SetHookActive("PRJ/widgets", id, false)
	check(false, "inactive")

	if hooks, err := h.c.Hooks(ctx, h.repo, "https://elsewhere.example.com"); err != nil || len(hooks) != 0 {
		t.Errorf("Hooks for another URL = %+v, %v", hooks, err)
	}
}

func TestHooksNeedRepositoryAdmin(t *testing.T) {
	e := newEnv(t, bitbucketfake.Options{})
	e.fake.AddRepository(bitbucketfake.Repo{Project: "PRJ", Slug: "widgets"})
	e.fake.Grant("bob", "PRJ", "PROJECT_WRITE")
	tok := e.fake.IssueToken(bitbucketfake.Token{User: "bob", ProjectPermission: "PROJECT_READ", RepoPermission: "REPO_WRITE"})
	c := e.open(tok)
	_, err := c.EnsureHooks(context.Background(), forge.Repository{FullName: "PRJ/widgets"}, forge.HookSpec{URL: "https://f.example.com/x", Secret: "s"})
	var he *forge.HostError
	if !errors.Is(err, forge.ErrForbidden) || !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !strings.Contains(he.Message, "not permitted") {
		t.Errorf("EnsureHooks without Repository admin: %v; want ErrForbidden from Bitbucket's 401", err)
	}
	noToken(t, err.Error(), tok)
	if _, err := c.EnsureHooks(context.Background(), forge.Repository{FullName: "PRJ/widgets"}, forge.HookSpec{}); err == nil {
		t.Error("EnsureHooks without a URL succeeded")
	}
}
