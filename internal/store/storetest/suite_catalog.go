package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/forgeway/forgeway/internal/store"
)

// idPattern is the shape of generated ids: a prefix and 26 lowercase base32 characters.
func idPattern(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + prefix + `_[a-z2-7]{26}$`)
}

func testIntegrations(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := store.Integration{
		Kind: "github", Name: "GitHub", BaseURL: "https://github.com", Status: store.StatusPending,
		StatusNote: "waiting", Settings: map[string]string{"app_id": "42"},
		SecretsEnc: []byte{1, 2, 3}, WebhookEnc: []byte{4, 5}, Filter: "private == `false`",
		Schedule: "@hourly", RouteKeys: []string{"app:42"}, ProjectID: "prj_x",
	}
	before := time.Now().Add(-time.Second)
	ok(t, st.CreateIntegration(ctx, &in), "create")
	if !idPattern("int").MatchString(in.ID) {
		t.Errorf("generated id %q, want int_ and 26 base32 characters", in.ID)
	}
	if in.CreatedAt.Before(before) || !in.UpdatedAt.Equal(in.CreatedAt) {
		t.Errorf("CreatedAt %v UpdatedAt %v, want now and equal", in.CreatedAt, in.UpdatedAt)
	}
	got, err := st.GetIntegration(ctx, in.ID)
	ok(t, err, "get")
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("get after create (-want +got):\n%s", diff)
	}
	if got.WebhookPrev != nil {
		t.Errorf("WebhookPrev = %v, want nil as written", got.WebhookPrev)
	}
	wantUTC(t, "integration", got.CreatedAt, got.UpdatedAt)

	dup := store.Integration{ID: in.ID, Kind: "gitlab", Name: "dup"}
	wantErr(t, st.CreateIntegration(ctx, &dup), store.ErrConflict, "create with a taken id")

	other := mkIntegration(t, st, "gitlab", "GitLab")
	list, err := st.ListIntegrations(ctx)
	ok(t, err, "list")
	if len(list) != 2 || list[0].ID != in.ID || list[1].ID != other.ID {
		t.Errorf("list = %v, want [%s %s]", ids(list), in.ID, other.ID)
	}

	in.Name, in.Status, in.WebhookPrev = "GitHub (renamed)", store.StatusActive, []byte{9}
	in.Settings = map[string]string{"app_id": "43"}
	ok(t, st.UpdateIntegration(ctx, &in), "update")
	got, err = st.GetIntegration(ctx, in.ID)
	ok(t, err, "get after update")
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("get after update (-want +got):\n%s", diff)
	}
	missing := store.Integration{ID: "int_missing", Kind: "github"}
	wantErr(t, st.UpdateIntegration(ctx, &missing), store.ErrNotFound, "update a missing integration")

	ok(t, st.DeleteIntegration(ctx, in.ID), "delete")
	_, err = st.GetIntegration(ctx, in.ID)
	wantErr(t, err, store.ErrNotFound, "get after delete")
	wantErr(t, st.DeleteIntegration(ctx, in.ID), store.ErrNotFound, "delete twice")
	_, err = st.GetIntegration(ctx, "int_nope")
	wantErr(t, err, store.ErrNotFound, "get a missing integration")
}

func ids(list []store.Integration) []string {
	var out []string
	for _, in := range list {
		out = append(out, in.ID)
	}
	return out
}

func testIntegrationRoutes(t *testing.T, st store.Store) {
	ctx := t.Context()
	a := mkIntegration(t, st, "github", "a", "app:1", "app:1", "host:x")
	b := mkIntegration(t, st, "github", "b", "app:1")
	c := mkIntegration(t, st, "gitea", "c", "app:1")

	found, err := st.FindIntegrationsByRoute(ctx, "github", "app:1")
	ok(t, err, "find")
	if got := ids(found); !slices.Equal(got, []string{a.ID, b.ID}) {
		t.Errorf("find github app:1 = %v, want [%s %s]", got, a.ID, b.ID)
	}
	found, err = st.FindIntegrationsByRoute(ctx, "gitea", "app:1")
	ok(t, err, "find gitea")
	if got := ids(found); !slices.Equal(got, []string{c.ID}) {
		t.Errorf("find gitea app:1 = %v, want [%s]", got, c.ID)
	}
	found, err = st.FindIntegrationsByRoute(ctx, "github", "app:nope")
	ok(t, err, "find none")
	if len(found) != 0 {
		t.Errorf("find unknown key = %v, want none", ids(found))
	}

	a.RouteKeys = []string{"host:y"}
	ok(t, st.UpdateIntegration(ctx, &a), "update routes")
	found, err = st.FindIntegrationsByRoute(ctx, "github", "app:1")
	ok(t, err, "find after update")
	if got := ids(found); !slices.Equal(got, []string{b.ID}) {
		t.Errorf("after a dropped app:1: find = %v, want [%s]", got, b.ID)
	}
	found, err = st.FindIntegrationsByRoute(ctx, "github", "host:y")
	ok(t, err, "find new key")
	if got := ids(found); !slices.Equal(got, []string{a.ID}) {
		t.Errorf("find host:y = %v, want [%s]", got, a.ID)
	}
	ok(t, st.DeleteIntegration(ctx, b.ID), "delete b")
	found, err = st.FindIntegrationsByRoute(ctx, "github", "app:1")
	ok(t, err, "find after delete")
	if len(found) != 0 {
		t.Errorf("after delete: find = %v, want none", ids(found))
	}
}

func testIntegrationDeleteCascades(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "github", "doomed", "app:7")
	keep := mkIntegration(t, st, "github", "kept")
	ok(t, st.UpsertInstallation(ctx, &store.Installation{IntegrationID: in.ID, ID: "100", Account: "acme"}), "installation")
	repo := store.Repository{IntegrationID: in.ID, HostID: "1", FullName: "acme/a"}
	ok(t, st.UpsertRepository(ctx, &repo), "repository")
	keptRepo := store.Repository{IntegrationID: keep.ID, HostID: "1", FullName: "acme/a"}
	ok(t, st.UpsertRepository(ctx, &keptRepo), "other integration's repository")
	ok(t, st.PutUserCredential(ctx, &store.UserCredential{IntegrationID: in.ID, User: "u1", Login: "ann", TokenEnc: []byte("x")}), "credential")
	ok(t, st.PutCacheEntry(ctx, &store.CacheEntry{IntegrationID: in.ID, Key: "GET /x", ETag: `"e"`}), "cache entry")
	ok(t, st.SetPullRequestHead(ctx, store.PullRequestHead{IntegrationID: in.ID, RepoHostID: "1", Number: 3, SHA: "abc"}), "pr head")
	d := store.Delivery{IntegrationID: in.ID, Kind: "github", HostID: "h1", Event: "push"}
	_, err := st.InsertDelivery(ctx, &d, store.NewJob{Kind: "process"})
	ok(t, err, "delivery")
	ok(t, st.AppendEvents(ctx, []store.Event{{ID: "ev1", IntegrationID: in.ID, DeliveryID: d.ID, Type: "dev.forgeway.push", Document: json.RawMessage(`{}`)}}), "event")

	ok(t, st.DeleteIntegration(ctx, in.ID), "delete")

	insts, err := st.ListInstallations(ctx, in.ID)
	ok(t, err, "list installations")
	if len(insts) != 0 {
		t.Errorf("installations left: %v", insts)
	}
	_, err = st.GetRepository(ctx, repo.ID)
	wantErr(t, err, store.ErrNotFound, "repository after delete")
	_, err = st.GetRepository(ctx, keptRepo.ID)
	ok(t, err, "the other integration's repository stays")
	_, err = st.GetUserCredential(ctx, in.ID, "u1")
	wantErr(t, err, store.ErrNotFound, "credential after delete")
	_, err = st.GetCacheEntry(ctx, in.ID, "GET /x")
	wantErr(t, err, store.ErrNotFound, "cache entry after delete")
	_, found, err := st.GetPullRequestHead(ctx, in.ID, "1", 3)
	ok(t, err, "pr head after delete")
	if found {
		t.Error("pull request head survived its integration")
	}
	routes, err := st.FindIntegrationsByRoute(ctx, "github", "app:7")
	ok(t, err, "routes after delete")
	if len(routes) != 0 {
		t.Errorf("route survived: %v", ids(routes))
	}
	got, err := st.GetDelivery(ctx, d.ID)
	ok(t, err, "deliveries stay as history")
	if got.IntegrationID != in.ID {
		t.Errorf("delivery integration = %q, want %q", got.IntegrationID, in.ID)
	}
	evs, err := st.ListEvents(ctx, store.EventFilter{})
	ok(t, err, "events stay")
	if len(evs) != 1 || evs[0].IntegrationID != in.ID {
		t.Errorf("events after delete = %v, want the one event", evs)
	}
}

func testInstallations(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "github", "app")
	a := store.Installation{IntegrationID: in.ID, ID: "2", Account: "acme", AccountType: "Organization", RepositorySelection: "all", Status: "active"}
	b := store.Installation{IntegrationID: in.ID, ID: "1", Account: "ann", AccountType: "User", RepositorySelection: "selected", Status: "active"}
	ok(t, st.UpsertInstallation(ctx, &a), "upsert a")
	ok(t, st.UpsertInstallation(ctx, &b), "upsert b")
	a.Status, a.RepositorySelection = "suspended", "selected"
	ok(t, st.UpsertInstallation(ctx, &a), "update a")
	list, err := st.ListInstallations(ctx, in.ID)
	ok(t, err, "list")
	if diff := cmp.Diff([]store.Installation{b, a}, list); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	wantUTC(t, "installation", list[0].UpdatedAt)
	ok(t, st.DeleteInstallation(ctx, in.ID, "1"), "delete")
	wantErr(t, st.DeleteInstallation(ctx, in.ID, "1"), store.ErrNotFound, "delete twice")
	orphan := store.Installation{IntegrationID: "int_missing", ID: "1"}
	wantErr(t, st.UpsertInstallation(ctx, &orphan), store.ErrNotFound, "installation of a missing integration")
}

func testRepositoryUpsertKeepsState(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "github", "gh")
	seen := ts("2026-01-02T03:04:05.123456Z")
	r := store.Repository{
		IntegrationID: in.ID, HostID: "1001", FullName: "acme/widgets", Name: "widgets", Owner: "acme",
		Group: "acme", DefaultBranch: "main", Visibility: "private", Private: true, Fork: true,
		CloneURL: "https://github.com/acme/widgets.git", WebURL: "https://github.com/acme/widgets",
		Permission: "admin", Description: "Widgets", Installation: "55", Extra: map[string]string{"topics": "a,b"},
		Matched: true, SeenAt: seen,
	}
	want := r
	ok(t, st.UpsertRepository(ctx, &r), "insert")
	if !idPattern("rep").MatchString(r.ID) {
		t.Errorf("generated id %q, want rep_ and 26 base32 characters", r.ID)
	}
	if r.CreatedAt.IsZero() || !r.UpdatedAt.Equal(r.CreatedAt) {
		t.Errorf("CreatedAt %v UpdatedAt %v, want now and equal", r.CreatedAt, r.UpdatedAt)
	}
	want.ID, want.CreatedAt, want.UpdatedAt = r.ID, r.CreatedAt, r.UpdatedAt
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("entry after insert (-want +got):\n%s", diff)
	}
	got, err := st.GetRepository(ctx, r.ID)
	ok(t, err, "get")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("get after insert (-want +got):\n%s", diff)
	}
	wantUTC(t, "repository", got.SeenAt, got.CreatedAt, got.UpdatedAt)

	// Attach it and record a mirror.
	r.Attached, r.Hooks, r.HookStatus = true, json.RawMessage(`[{"id":7}]`), "ok"
	r.Mirror = store.MirrorState{Status: "ready", Head: "abc", SyncedAt: ts("2026-01-03T00:00:00Z"), SyncCount: 3}
	ok(t, st.UpdateRepositoryState(ctx, &r), "update state")
	state := r

	// Discovery sees it renamed, and knows nothing of attachment or mirror.
	renamed := store.Repository{
		IntegrationID: in.ID, HostID: "1001", FullName: "acme/gadgets", Name: "gadgets", Owner: "acme",
		DefaultBranch: "trunk", Matched: false,
	}
	ok(t, st.UpsertRepository(ctx, &renamed), "upsert renamed")
	if renamed.ID != r.ID {
		t.Fatalf("rename changed the id: %s, want %s", renamed.ID, r.ID)
	}
	if !renamed.Attached || renamed.HookStatus != "ok" || renamed.Mirror.Head != "abc" || string(renamed.Hooks) != `[{"id":7}]` {
		t.Errorf("upsert did not copy the kept state back: %+v", renamed)
	}
	got, err = st.GetRepositoryByHostID(ctx, in.ID, "1001")
	ok(t, err, "get by host id")
	if got.FullName != "acme/gadgets" || got.DefaultBranch != "trunk" || got.Matched || got.Private {
		t.Errorf("catalog fields not updated: %+v", got)
	}
	if diff := cmp.Diff(state.Mirror, got.Mirror); diff != "" || !got.Attached || got.HookStatus != "ok" || string(got.Hooks) != string(state.Hooks) {
		t.Errorf("attachment or mirror lost across a rename: %+v (mirror diff %s)", got, diff)
	}
	if !got.CreatedAt.Equal(state.CreatedAt) {
		t.Errorf("CreatedAt changed: %v, want %v", got.CreatedAt, state.CreatedAt)
	}
	if got.SeenAt.Before(seen) || got.SeenAt.Equal(seen) {
		t.Errorf("SeenAt = %v, want now (after %v)", got.SeenAt, seen)
	}

	_, err = st.GetRepositoryByHostID(ctx, in.ID, "nope")
	wantErr(t, err, store.ErrNotFound, "get a missing host id")
	missing := store.Repository{ID: "rep_missing"}
	wantErr(t, st.UpdateRepositoryState(ctx, &missing), store.ErrNotFound, "update a missing repository")
	orphan := store.Repository{IntegrationID: "int_missing", HostID: "1", FullName: "x/y"}
	wantErr(t, st.UpsertRepository(ctx, &orphan), store.ErrNotFound, "repository of a missing integration")
	ok(t, st.DeleteRepository(ctx, r.ID), "delete")
	_, err = st.GetRepository(ctx, r.ID)
	wantErr(t, err, store.ErrNotFound, "get after delete")
	wantErr(t, st.DeleteRepository(ctx, r.ID), store.ErrNotFound, "delete twice")
}

func mkRepo(t *testing.T, st store.Store, integrationID, hostID, fullName string, mod func(r *store.Repository)) store.Repository {
	t.Helper()
	r := store.Repository{IntegrationID: integrationID, HostID: hostID, FullName: fullName}
	if mod != nil {
		mod(&r)
	}
	ok(t, st.UpsertRepository(t.Context(), &r), "upsert "+fullName)
	return r
}

func names(rs []store.Repository) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.FullName)
	}
	return out
}

func testRepositoryList(t *testing.T, st store.Store) {
	ctx := t.Context()
	gh := mkIntegration(t, st, "github", "gh")
	gl := mkIntegration(t, st, "gitlab", "gl")
	mkRepo(t, st, gh.ID, "1", "acme/Widgets", func(r *store.Repository) { r.Group = "acme"; r.Matched = true })
	mkRepo(t, st, gh.ID, "2", "acme/gad_gets", func(r *store.Repository) { r.Group = "acme" })
	mkRepo(t, st, gh.ID, "3", "bob/widget-tools", func(r *store.Repository) { r.Group = "bob"; r.Matched = true })
	attached := mkRepo(t, st, gl.ID, "4", "grp/sub/widgets", func(r *store.Repository) { r.Group = "grp/sub" })
	attached.Attached = true
	ok(t, st.UpdateRepositoryState(ctx, &attached), "attach")
	yes, no := true, false

	for _, tc := range []struct {
		name string
		f    store.RepositoryFilter
		want []string
	}{
		{"all", store.RepositoryFilter{}, []string{"acme/Widgets", "acme/gad_gets", "bob/widget-tools", "grp/sub/widgets"}},
		{"integration", store.RepositoryFilter{IntegrationID: gl.ID}, []string{"grp/sub/widgets"}},
		{"query ignores case", store.RepositoryFilter{Query: "WIDGET"}, []string{"acme/Widgets", "bob/widget-tools", "grp/sub/widgets"}},
		{"query underscore is literal", store.RepositoryFilter{Query: "d_g"}, []string{"acme/gad_gets"}},
		{"query percent is literal", store.RepositoryFilter{Query: "%"}, nil},
		{"group", store.RepositoryFilter{Group: "acme"}, []string{"acme/Widgets", "acme/gad_gets"}},
		{"attached", store.RepositoryFilter{Attached: &yes}, []string{"grp/sub/widgets"}},
		{"not attached", store.RepositoryFilter{Attached: &no, IntegrationID: gh.ID}, []string{"acme/Widgets", "acme/gad_gets", "bob/widget-tools"}},
		{"matched", store.RepositoryFilter{Matched: &yes}, []string{"acme/Widgets", "bob/widget-tools"}},
		{"combined", store.RepositoryFilter{Matched: &yes, Query: "tools", IntegrationID: gh.ID}, []string{"bob/widget-tools"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, next, err := st.ListRepositories(ctx, tc.f)
			ok(t, err, "list")
			if diff := cmp.Diff(tc.want, names(items), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if next != "" {
				t.Errorf("next = %q on a single page", next)
			}
		})
	}
	_, _, err := st.ListRepositories(ctx, store.RepositoryFilter{Page: store.Page{After: "%%%not-a-cursor"}})
	if err == nil {
		t.Error("a bad cursor was accepted")
	}
}

func testRepositoryPagination(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "github", "gh")
	var want []string
	for i := range 11 {
		name := fmt.Sprintf("org/repo-%02d", (i*7)%11) // inserted out of order
		mkRepo(t, st, in.ID, fmt.Sprint(i), name, nil)
		want = append(want, name)
	}
	// Two entries with the same name in different integrations: the id breaks the tie.
	other := mkIntegration(t, st, "gitlab", "gl")
	mkRepo(t, st, other.ID, "x", "org/repo-05", nil)
	want = append(want, "org/repo-05")
	slices.Sort(want)

	var got []string
	after := ""
	pages := 0
	for {
		items, next, err := st.ListRepositories(ctx, store.RepositoryFilter{Page: store.Page{After: after, Limit: 5}})
		ok(t, err, "page")
		pages++
		if len(items) > 5 {
			t.Fatalf("page of %d items with limit 5", len(items))
		}
		got = append(got, names(items)...)
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		after = next
	}
	if pages != 3 {
		t.Errorf("%d pages of 5 for 12 items, want 3", pages)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged listing (-want +got):\n%s", diff)
	}
	items, _, err := st.ListRepositories(ctx, store.RepositoryFilter{Page: store.Page{Limit: 0}})
	ok(t, err, "default limit")
	if len(items) != 12 {
		t.Errorf("limit 0 gave %d items, want all 12 (default 50)", len(items))
	}
}

func testDeleteRepositoriesNotSeen(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "github", "gh")
	other := mkIntegration(t, st, "github", "other")
	old, cutoff := ts("2026-01-01T00:00:00Z"), ts("2026-02-01T00:00:00Z")
	seenOld := func(inst string) func(r *store.Repository) {
		return func(r *store.Repository) { r.SeenAt, r.Installation = old, inst }
	}
	goneA := mkRepo(t, st, in.ID, "1", "acme/gone", seenOld("10"))
	goneAttached := mkRepo(t, st, in.ID, "2", "acme/gone-attached", seenOld("10"))
	goneAttached.Attached = true
	ok(t, st.UpdateRepositoryState(ctx, &goneAttached), "attach")
	otherInst := mkRepo(t, st, in.ID, "3", "bob/gone", seenOld("20"))
	fresh := mkRepo(t, st, in.ID, "4", "acme/fresh", func(r *store.Repository) { r.Installation = "10" })
	otherInteg := mkRepo(t, st, other.ID, "1", "acme/gone", seenOld("10"))

	n, attached, err := st.DeleteRepositoriesNotSeen(ctx, in.ID, "10", cutoff)
	ok(t, err, "delete installation 10")
	if n != 1 {
		t.Errorf("deleted %d, want 1", n)
	}
	if len(attached) != 1 || attached[0].ID != goneAttached.ID {
		t.Errorf("attached left behind = %v, want [acme/gone-attached]", names(attached))
	}
	for _, c := range []struct {
		r    store.Repository
		gone bool
	}{{goneA, true}, {goneAttached, false}, {otherInst, false}, {fresh, false}, {otherInteg, false}} {
		_, err := st.GetRepository(ctx, c.r.ID)
		if c.gone {
			wantErr(t, err, store.ErrNotFound, c.r.FullName+" should be deleted")
		} else {
			ok(t, err, c.r.FullName+" should stay")
		}
	}
	n, _, err = st.DeleteRepositoriesNotSeen(ctx, in.ID, "", cutoff)
	ok(t, err, "delete whole integration")
	if n != 1 {
		t.Errorf("deleted %d without installation filter, want 1 (bob/gone)", n)
	}
	_, err = st.GetRepository(ctx, otherInteg.ID)
	ok(t, err, "another integration's entry stays")
}

func testPullRequestHeads(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "azure-devops", "ado")
	_, found, err := st.GetPullRequestHead(ctx, in.ID, "r1", 1)
	ok(t, err, "get missing")
	if found {
		t.Error("found a head never set")
	}
	ok(t, st.SetPullRequestHead(ctx, store.PullRequestHead{IntegrationID: in.ID, RepoHostID: "r1", Number: 1, SHA: "aaa"}), "set")
	ok(t, st.SetPullRequestHead(ctx, store.PullRequestHead{IntegrationID: in.ID, RepoHostID: "r1", Number: 1, SHA: "bbb"}), "set again")
	ok(t, st.SetPullRequestHead(ctx, store.PullRequestHead{IntegrationID: in.ID, RepoHostID: "r1", Number: 2, SHA: "ccc"}), "set other")
	sha, found, err := st.GetPullRequestHead(ctx, in.ID, "r1", 1)
	ok(t, err, "get")
	if !found || sha != "bbb" {
		t.Errorf("head = %q, %v; want bbb, true", sha, found)
	}
}

func testUserCredentials(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "gitlab", "gl")
	exp := ts("2026-05-01T10:00:00.5Z")
	c1 := store.UserCredential{IntegrationID: in.ID, User: "u1", Login: "ann", TokenEnc: []byte("enc1"), Expires: exp}
	c2 := store.UserCredential{IntegrationID: in.ID, User: "u2", Login: "ann", TokenEnc: []byte("enc2")}
	c3 := store.UserCredential{IntegrationID: in.ID, User: "u3", Login: "bob", TokenEnc: []byte("enc3")}
	for _, c := range []*store.UserCredential{&c3, &c1, &c2} {
		ok(t, st.PutUserCredential(ctx, c), "put "+c.User)
	}
	got, err := st.GetUserCredential(ctx, in.ID, "u1")
	ok(t, err, "get")
	if diff := cmp.Diff(c1, got); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}
	c1.TokenEnc = []byte("enc1b")
	ok(t, st.PutUserCredential(ctx, &c1), "replace")
	list, err := st.ListUserCredentials(ctx, in.ID)
	ok(t, err, "list")
	if diff := cmp.Diff([]store.UserCredential{c1, c2, c3}, list); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	n, err := st.DeleteUserCredentialsByLogin(ctx, in.ID, "ann")
	ok(t, err, "delete by login")
	if n != 2 {
		t.Errorf("deleted %d credentials of ann, want 2", n)
	}
	ok(t, st.DeleteUserCredential(ctx, in.ID, "u3"), "delete")
	wantErr(t, st.DeleteUserCredential(ctx, in.ID, "u3"), store.ErrNotFound, "delete twice")
	_, err = st.GetUserCredential(ctx, in.ID, "u1")
	wantErr(t, err, store.ErrNotFound, "get deleted")
	orphan := store.UserCredential{IntegrationID: "int_missing", User: "u"}
	wantErr(t, st.PutUserCredential(ctx, &orphan), store.ErrNotFound, "credential on a missing integration")
}

func testAPITokensAndProjects(t *testing.T, st store.Store) {
	ctx := t.Context()
	p := store.Project{Name: "payments"}
	ok(t, st.CreateProject(ctx, &p), "create project")
	if !idPattern("prj").MatchString(p.ID) {
		t.Errorf("project id %q", p.ID)
	}
	wantErr(t, st.CreateProject(ctx, &store.Project{Name: "payments"}), store.ErrConflict, "duplicate project name")
	p2 := store.Project{Name: "apps"}
	ok(t, st.CreateProject(ctx, &p2), "create second project")
	projects, err := st.ListProjects(ctx)
	ok(t, err, "list projects")
	if diff := cmp.Diff([]store.Project{p2, p}, projects); diff != "" {
		t.Errorf("projects (-want +got):\n%s", diff)
	}

	hash := bytes.Repeat([]byte{0xab}, 32)
	tok := store.APIToken{Name: "ci", Hash: hash, ProjectID: p.ID}
	ok(t, st.CreateAPIToken(ctx, &tok), "create token")
	if !idPattern("tok").MatchString(tok.ID) {
		t.Errorf("token id %q", tok.ID)
	}
	admin := store.APIToken{Name: "root", Hash: bytes.Repeat([]byte{0x01}, 32), Admin: true}
	ok(t, st.CreateAPIToken(ctx, &admin), "create admin token")
	wantErr(t, st.CreateAPIToken(ctx, &store.APIToken{Name: "again", Hash: hash}), store.ErrConflict, "duplicate hash")

	got, err := st.FindAPIToken(ctx, hash)
	ok(t, err, "find")
	if diff := cmp.Diff(tok, got); diff != "" {
		t.Errorf("find (-want +got):\n%s", diff)
	}
	_, err = st.FindAPIToken(ctx, bytes.Repeat([]byte{0xcd}, 32))
	wantErr(t, err, store.ErrNotFound, "find unknown hash")
	used := ts("2026-03-03T03:03:03.000003Z")
	ok(t, st.TouchAPIToken(ctx, tok.ID, used), "touch")
	tok.LastUsed = used
	list, err := st.ListAPITokens(ctx)
	ok(t, err, "list tokens")
	if diff := cmp.Diff([]store.APIToken{tok, admin}, list); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
	ok(t, st.DeleteAPIToken(ctx, tok.ID), "delete token")
	wantErr(t, st.DeleteAPIToken(ctx, tok.ID), store.ErrNotFound, "delete token twice")
	wantErr(t, st.TouchAPIToken(ctx, tok.ID, used), store.ErrNotFound, "touch deleted token")
}

func testCacheEntries(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "gitea", "gt")
	e := store.CacheEntry{IntegrationID: in.ID, Key: "GET https://x/api/repos#cred1", ETag: `W/"1"`, LastModified: "Mon, 02 Jan 2006 15:04:05 GMT",
		Body: []byte(`[{"id":1}]`), Header: map[string][]string{"Link": {"<...>; rel=next"}}}
	ok(t, st.PutCacheEntry(ctx, &e), "put")
	got, err := st.GetCacheEntry(ctx, in.ID, e.Key)
	ok(t, err, "get")
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}
	e.ETag, e.Body = `W/"2"`, []byte(`[]`)
	ok(t, st.PutCacheEntry(ctx, &e), "replace")
	got, err = st.GetCacheEntry(ctx, in.ID, e.Key)
	ok(t, err, "get replaced")
	if got.ETag != `W/"2"` || string(got.Body) != `[]` {
		t.Errorf("replaced entry = %+v", got)
	}
	_, err = st.GetCacheEntry(ctx, in.ID, "other")
	wantErr(t, err, store.ErrNotFound, "get missing")
}

func testKV(t *testing.T, st store.Store) {
	ctx := t.Context()
	_, err := st.GetKV(ctx, "k")
	wantErr(t, err, store.ErrNotFound, "get missing")
	ok(t, st.PutKV(ctx, "k", []byte("v1")), "put")
	ok(t, st.PutKV(ctx, "k", []byte("v2")), "replace")
	v, err := st.GetKV(ctx, "k")
	ok(t, err, "get")
	if string(v) != "v2" {
		t.Errorf("value %q, want v2", v)
	}
	wrote, err := st.PutKVIfAbsent(ctx, "k", []byte("v3"))
	ok(t, err, "put if absent on a present key")
	if wrote {
		t.Error("PutKVIfAbsent overwrote a present key")
	}
	ok(t, st.DeleteKV(ctx, "k"), "delete")
	ok(t, st.DeleteKV(ctx, "k"), "delete an absent key")
	wrote, err = st.PutKVIfAbsent(ctx, "k", []byte("v4"))
	ok(t, err, "put if absent")
	if !wrote {
		t.Error("PutKVIfAbsent did not write an absent key")
	}
	v, err = st.GetKV(ctx, "k")
	ok(t, err, "get")
	if string(v) != "v4" {
		t.Errorf("value %q, want v4", v)
	}
}

func testPutKVIfAbsentConcurrent(t *testing.T, st store.Store) {
	ctx := t.Context()
	const n = 20
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wrote  []int
		errs   []error
		values = func(i int) []byte { return []byte(fmt.Sprint("writer-", i)) }
	)
	for i := range n {
		wg.Go(func() {
			w, err := st.PutKVIfAbsent(ctx, "periodic/x/slot", values(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if w {
				wrote = append(wrote, i)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(wrote) != 1 {
		t.Fatalf("%d writers reported a write, want exactly 1", len(wrote))
	}
	v, err := st.GetKV(ctx, "periodic/x/slot")
	ok(t, err, "get")
	if !bytes.Equal(v, values(wrote[0])) {
		t.Errorf("stored %q, but writer %d reported the write", v, wrote[0])
	}
}

func testTxRollback(t *testing.T, st store.Store) {
	ctx := t.Context()
	boom := fmt.Errorf("boom")
	var in store.Integration
	err := st.Tx(ctx, func(tx store.Tx) error {
		in = store.Integration{Kind: "github", Name: "in tx", RouteKeys: []string{"k"}}
		if err := tx.CreateIntegration(ctx, &in); err != nil {
			return err
		}
		r := store.Repository{IntegrationID: in.ID, HostID: "1", FullName: "a/b"}
		if err := tx.UpsertRepository(ctx, &r); err != nil {
			return err
		}
		if err := tx.PutKV(ctx, "tx-key", []byte("v")); err != nil {
			return err
		}
		if _, _, err := tx.InsertJob(ctx, store.NewJob{Kind: "tx-job"}); err != nil {
			return err
		}
		if err := tx.AppendEvents(ctx, []store.Event{{ID: "tx-ev", Type: "t", Document: json.RawMessage(`{}`)}}); err != nil {
			return err
		}
		// Reads inside the transaction see its writes.
		if _, err := tx.GetIntegration(ctx, in.ID); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx returned %v, want fn's error", err)
	}
	_, err = st.GetIntegration(ctx, in.ID)
	wantErr(t, err, store.ErrNotFound, "integration after rollback")
	_, err = st.GetKV(ctx, "tx-key")
	wantErr(t, err, store.ErrNotFound, "kv after rollback")
	jobs, _, err := st.ListJobs(ctx, store.JobFilter{})
	ok(t, err, "list jobs")
	if len(jobs) != 0 {
		t.Errorf("jobs after rollback: %d", len(jobs))
	}
	evs, err := st.ListEvents(ctx, store.EventFilter{})
	ok(t, err, "list events")
	if len(evs) != 0 {
		t.Errorf("events after rollback: %d", len(evs))
	}
	repos, _, err := st.ListRepositories(ctx, store.RepositoryFilter{})
	ok(t, err, "list repositories")
	if len(repos) != 0 {
		t.Errorf("repositories after rollback: %d", len(repos))
	}
	found, err := st.FindIntegrationsByRoute(ctx, "github", "k")
	ok(t, err, "find routes")
	if len(found) != 0 {
		t.Errorf("routes after rollback: %d", len(found))
	}
}

func testTxCommit(t *testing.T, st store.Store) {
	ctx := t.Context()
	var job store.Job
	err := st.Tx(ctx, func(tx store.Tx) error {
		wrote, err := tx.PutKVIfAbsent(ctx, "periodic/a/1", []byte("x"))
		if err != nil || !wrote {
			return fmt.Errorf("put if absent: %v %w", wrote, err)
		}
		job, _, err = tx.InsertJob(ctx, store.NewJob{Kind: "k"})
		return err
	})
	ok(t, err, "tx")
	if _, err := st.GetKV(ctx, "periodic/a/1"); err != nil {
		t.Errorf("kv not committed: %v", err)
	}
	if _, err := st.GetJob(ctx, job.ID); err != nil {
		t.Errorf("job not committed: %v", err)
	}
}

func testRewriteSecrets(t *testing.T, st store.Store) {
	ctx := t.Context()
	a := store.Integration{Kind: "github", Name: "a", SecretsEnc: []byte("s-a"), WebhookEnc: []byte("w-a"), WebhookPrev: []byte("p-a")}
	ok(t, st.CreateIntegration(ctx, &a), "create a")
	b := store.Integration{Kind: "gitlab", Name: "b", WebhookEnc: []byte("w-b")}
	ok(t, st.CreateIntegration(ctx, &b), "create b")
	ok(t, st.PutUserCredential(ctx, &store.UserCredential{IntegrationID: b.ID, User: "u", TokenEnc: []byte("t-u")}), "credential")

	// A failing rewrite changes nothing.
	calls := 0
	_, err := st.RewriteSecrets(ctx, func(old []byte) ([]byte, error) {
		calls++
		if calls == 3 {
			return nil, errors.New("cannot decrypt")
		}
		return append([]byte("v2:"), old...), nil
	})
	if err == nil {
		t.Fatal("RewriteSecrets succeeded although fn failed")
	}
	got, err := st.GetIntegration(ctx, a.ID)
	ok(t, err, "get a")
	if string(got.SecretsEnc) != "s-a" || string(got.WebhookEnc) != "w-a" {
		t.Errorf("failed rewrite left changes: %q %q", got.SecretsEnc, got.WebhookEnc)
	}

	var seen []string
	n, err := st.RewriteSecrets(ctx, func(old []byte) ([]byte, error) {
		seen = append(seen, string(old))
		return append([]byte("v2:"), old...), nil
	})
	ok(t, err, "rewrite")
	slices.Sort(seen)
	if want := []string{"p-a", "s-a", "t-u", "w-a", "w-b"}; !slices.Equal(seen, want) {
		t.Errorf("fn saw %v, want %v (empty values skipped)", seen, want)
	}
	if n != 5 {
		t.Errorf("rewrote %d values, want 5", n)
	}
	got, err = st.GetIntegration(ctx, a.ID)
	ok(t, err, "get a")
	if string(got.SecretsEnc) != "v2:s-a" || string(got.WebhookEnc) != "v2:w-a" || string(got.WebhookPrev) != "v2:p-a" {
		t.Errorf("a after rewrite: %q %q %q", got.SecretsEnc, got.WebhookEnc, got.WebhookPrev)
	}
	got, err = st.GetIntegration(ctx, b.ID)
	ok(t, err, "get b")
	if got.SecretsEnc != nil || got.WebhookPrev != nil || string(got.WebhookEnc) != "v2:w-b" {
		t.Errorf("b after rewrite: %q %q %q", got.SecretsEnc, got.WebhookEnc, got.WebhookPrev)
	}
	c, err := st.GetUserCredential(ctx, b.ID, "u")
	ok(t, err, "get credential")
	if string(c.TokenEnc) != "v2:t-u" {
		t.Errorf("token after rewrite: %q", c.TokenEnc)
	}
}

func testPing(t *testing.T, st store.Store) {
	ok(t, st.Ping(t.Context()), "ping")
}

func testRepositoryBulkUpsert(t *testing.T, st store.Store) {
	ctx := t.Context()
	in := mkIntegration(t, st, "github", "bulk")
	attached := mkRepo(t, st, in.ID, "7", "acme/r-0007", nil)
	attached.Attached, attached.HookStatus = true, "ok"
	attached.Mirror = store.MirrorState{Status: "ready", Head: "abc"}
	ok(t, st.UpdateRepositoryState(ctx, &attached), "attach")

	seen := ts("2026-02-01T00:00:00Z")
	page := make([]store.Repository, 0, 1200)
	for i := range 1200 { // more than one statement's worth
		page = append(page, store.Repository{IntegrationID: in.ID, HostID: fmt.Sprint(i), FullName: fmt.Sprintf("acme/r-%04d", i),
			Name: fmt.Sprintf("r-%04d", i), Owner: "acme", DefaultBranch: "main", Private: i%2 == 0, Matched: i%3 == 0, SeenAt: seen})
	}
	ok(t, st.UpsertRepositories(ctx, page), "bulk upsert")
	all, next, err := st.ListRepositories(ctx, store.RepositoryFilter{IntegrationID: in.ID, Page: store.Page{Limit: 500}})
	ok(t, err, "list")
	if next == "" || len(all) != 500 {
		t.Fatalf("first page: %d entries, next %q", len(all), next)
	}
	got, err := st.GetRepositoryByHostID(ctx, in.ID, "7")
	ok(t, err, "get the attached one")
	if got.ID != attached.ID || !got.Attached || got.Mirror.Head != "abc" || got.Name != "r-0007" || got.DefaultBranch != "main" {
		t.Errorf("bulk upsert lost the kept state or the new fields: %+v", got)
	}
	one, err := st.GetRepositoryByHostID(ctx, in.ID, "1199")
	ok(t, err, "get the last")
	if !idPattern("rep").MatchString(one.ID) || !one.SeenAt.Equal(seen) || one.Private || one.Matched != (1199%3 == 0) {
		t.Errorf("entry written by the bulk upsert: %+v", one)
	}
	// Again, renamed: same ids.
	for i := range page {
		page[i].FullName += "-x"
	}
	ok(t, st.UpsertRepositories(ctx, page), "bulk upsert again")
	again, err := st.GetRepositoryByHostID(ctx, in.ID, "1199")
	ok(t, err, "get again")
	if again.ID != one.ID || again.FullName != "acme/r-1199-x" {
		t.Errorf("second bulk upsert: %+v (id was %s)", again, one.ID)
	}
	dup := []store.Repository{{IntegrationID: in.ID, HostID: "1", FullName: "a/b"}, {IntegrationID: in.ID, HostID: "1", FullName: "a/c"}}
	if err := st.UpsertRepositories(ctx, dup); err == nil {
		t.Error("a page with the same host id twice was accepted")
	}
	orphan := []store.Repository{{IntegrationID: "int_missing", HostID: "1", FullName: "x/y"}}
	wantErr(t, st.UpsertRepositories(ctx, orphan), store.ErrNotFound, "bulk upsert for a missing integration")
	ok(t, st.UpsertRepositories(ctx, nil), "empty bulk upsert")
}
