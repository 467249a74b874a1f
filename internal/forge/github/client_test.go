package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
)

func TestAppRepositories(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	e.fake.AddOrg("acme")
	e.fake.AddRepositories("acme", 150)
	e.fake.AddRepository(githubfake.Repo{FullName: "bob/one", Private: true})
	e.fake.AddRepository(githubfake.Repo{FullName: "bob/two", Description: "second", Archived: true})
	e.fake.AddRepository(githubfake.Repo{FullName: "bob/three", Private: true})
	e.fake.AddRepository(githubfake.Repo{FullName: "carol/hidden", Private: true})
	acme := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	bob := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "bob", Repositories: []string{"bob/one", "bob/two"}})
	e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "carol", Suspended: true})
	c := e.open(in)

	insts, err := c.Installations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 3 || insts[0].Account != "acme" || insts[0].AccountType != "Organization" || insts[0].RepositorySelection != "all" ||
		insts[1].RepositorySelection != "selected" || !insts[2].Suspended || insts[2].Suspended == insts[1].Suspended {
		t.Fatalf("installations %+v", insts)
	}

	all, pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 152 || pages != 3 {
		t.Fatalf("%d repositories in %d pages", len(all), pages)
	}
	byName := map[string]forge.Repository{}
	for _, r := range all {
		byName[r.FullName] = r
	}
	r := byName["acme/repo-0003"]
	if r.Installation != strconv.FormatInt(acme.ID, 10) || r.Group != "acme" || r.Owner != "acme" || r.Name != "repo-0003" ||
		r.Visibility != "public" || r.Private || r.DefaultBranch != "main" || r.Permission != forge.PermissionAdmin ||
		r.CloneURL != e.fake.URL+"/acme/repo-0003.git" || r.WebURL != e.fake.URL+"/acme/repo-0003" || r.HostID == "" {
		t.Errorf("acme/repo-0003 mapped to %+v", r)
	}
	two := byName["bob/two"]
	if two.Installation != strconv.FormatInt(bob.ID, 10) || !two.Archived || two.Description != "second" {
		t.Errorf("bob/two mapped to %+v", two)
	}
	if _, ok := byName["bob/three"]; ok {
		t.Error("a repository the installation was not granted is listed")
	}
	if _, ok := byName["carol/hidden"]; ok {
		t.Error("a suspended installation's repository is listed")
	}
	if b := c.Budget(); b.Limit != 5000 || b.Remaining >= 5000 || b.Reset.IsZero() {
		t.Errorf("budget %+v", b)
	}
	// One token per installation, reused across its pages.
	if n := e.fake.RequestCount(fmt.Sprintf("/app/installations/%d/access_tokens", acme.ID)); n != 1 {
		t.Errorf("%d tokens minted for acme", n)
	}
}

func TestTokenRepositories(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, _ := e.tokenIntegration("alice")
	e.fake.AddOrg("acme")
	e.fake.AddOrgMember("acme", "alice", "push")
	e.fake.AddRepositories("alice", 230)
	e.fake.AddRepository(githubfake.Repo{FullName: "acme/tool", Private: true})
	e.fake.AddRepository(githubfake.Repo{FullName: "zed/shared", Private: true})
	e.fake.AddRepository(githubfake.Repo{FullName: "zed/not-mine", Private: true})
	e.fake.AddCollaborator("zed/shared", "alice", "pull")
	c := e.open(in)
	all, pages, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 232 || pages != 3 {
		t.Fatalf("%d repositories in %d pages", len(all), pages)
	}
	perm := map[string]forge.Permission{}
	for _, r := range all {
		perm[r.FullName] = r.Permission
		if r.Installation != "" {
			t.Fatalf("token repository with an installation: %+v", r)
		}
	}
	if perm["acme/tool"] != forge.PermissionWrite || perm["zed/shared"] != forge.PermissionRead || perm["alice/repo-0001"] != forge.PermissionAdmin {
		t.Errorf("permissions %v %v %v", perm["acme/tool"], perm["zed/shared"], perm["alice/repo-0001"])
	}
	if _, ok := perm["zed/not-mine"]; ok {
		t.Error("a repository alice cannot see is listed")
	}

	// fn's error stops the listing and is returned as is.
	stop := errors.New("enough")
	calls := 0
	err = c.Repositories(context.Background(), func([]forge.Repository) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("stop: err %v after %d calls", err, calls)
	}
}

func TestListingFailures(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, tok := e.tokenIntegration("alice")
	e.fake.AddRepositories("alice", 350)
	c := e.open(in)

	e.fake.FailNext("/user/repos?page=3", http.StatusBadGateway, nil)
	_, _, err := collect(t, c)
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != http.StatusBadGateway || !strings.Contains(he.Op, "page 3") {
		t.Errorf("5xx on page 3: %v", err)
	}

	// Page 2 never answers; the hang is consumed once page 1 is in, whatever the machine's
	// speed, so the deadline leaves page 1 room.
	e.fake.HangNext("/user/repos?page=2")
	before := e.fake.RequestCount("/user/repos")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err = c.Repositories(ctx, func([]forge.Repository) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second || e.fake.RequestCount("/user/repos")-before < 2 {
		t.Errorf("hung page: %v after %s", err, time.Since(start))
	}

	reset := e.clock.Now().Add(17 * time.Minute).Truncate(time.Second)
	e.fake.FailNext("/user/repos?page=1", http.StatusForbidden, http.Header{
		"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)},
	})
	_, _, err = collect(t, c)
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) || rl.Secondary || !rl.Reset.Equal(reset) {
		t.Errorf("primary rate limit: %v", err)
	}

	e.fake.FailNext("/user/repos?page=2", http.StatusTooManyRequests, http.Header{"Retry-After": {"42"}})
	_, _, err = collect(t, c)
	if !errors.As(err, &rl) || !rl.Secondary || !rl.Reset.Equal(e.clock.Now().Add(42*time.Second)) {
		t.Errorf("secondary rate limit: %v", err)
	}

	e.fake.FailNext("/user/repos?page=1", http.StatusForbidden, http.Header{"Retry-After": {"5"}})
	_, _, err = collect(t, c)
	if !errors.As(err, &rl) || !rl.Secondary {
		t.Errorf("secondary limit as 403: %v", err)
	}

	for _, err := range []error{err} {
		if strings.Contains(err.Error(), tok) {
			t.Fatal("an error carries the token")
		}
	}
}

func TestRateLimitSpent(t *testing.T) {
	e := newEnv(t, githubfake.Options{RateLimit: 2})
	in, _ := e.tokenIntegration("alice")
	e.fake.AddRepositories("alice", 250)
	c := e.open(in)
	_, _, err := collect(t, c)
	var rl *forge.RateLimitError
	if !errors.As(err, &rl) || rl.Secondary || !rl.Reset.Equal(e.clock.Now().Add(time.Hour).Truncate(time.Second)) {
		t.Fatalf("spent budget: %v", err)
	}
	if b := c.Budget(); b.Remaining != 0 || b.Limit != 2 {
		t.Errorf("budget %+v", b)
	}
}

func TestInstallationTokenRenewal(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	e.fake.AddOrg("acme")
	e.fake.AddRepositories("acme", 2)
	inst := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	c := e.open(in)
	mintPath := fmt.Sprintf("/app/installations/%d/access_tokens", inst.ID)
	repo := forge.Repository{FullName: "acme/repo-0001", Installation: strconv.FormatInt(inst.ID, 10)}
	ctx := context.Background()

	branches := func() {
		t.Helper()
		if _, err := c.Branches(ctx, repo); err != nil {
			t.Fatal(err)
		}
	}
	branches()
	branches()
	if n := e.fake.RequestCount(mintPath); n != 1 {
		t.Fatalf("%d mints for two calls", n)
	}
	e.clock.Add(54 * time.Minute) // 6 minutes left: still good
	branches()
	if n := e.fake.RequestCount(mintPath); n != 1 {
		t.Fatalf("renewed with 6 minutes left")
	}
	e.clock.Add(2 * time.Minute) // 4 minutes left: renew before use
	branches()
	if n := e.fake.RequestCount(mintPath); n != 2 {
		t.Fatalf("not renewed with 4 minutes left (%d mints)", n)
	}

	// git asks for more validity than the cached token has.
	e.clock.Add(30 * time.Minute)
	ga, err := c.GitAuth(ctx, repo, nil, 45*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.fake.RequestCount(mintPath); n != 3 || ga.Expires.Sub(e.clock.Now()) < 45*time.Minute {
		t.Fatalf("GitAuth: %d mints, expires %s", n, ga.Expires)
	}
	if _, err := c.GitAuth(ctx, repo, nil, 2*time.Hour); err == nil {
		t.Error("GitAuth promised two hours of an installation token")
	}

	// GitHub expired the token early: the call is retried once with a new token.
	e.fake.ExpireInstallationTokens(inst.ID)
	branches()
	if n := e.fake.RequestCount(mintPath); n != 4 {
		t.Fatalf("expired token not replaced (%d mints)", n)
	}

	// Concurrent callers share one mint.
	e.clock.Add(58 * time.Minute)
	done := make(chan error, 8)
	for range 8 {
		go func() { _, err := c.Branches(ctx, repo); done <- err }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.RequestCount(mintPath); n != 5 {
		t.Errorf("8 concurrent calls minted %d tokens", n-4)
	}

	// The host revokes the token under 8 concurrent callers: they share one replacement.
	e.fake.ExpireInstallationTokens(inst.ID)
	for range 8 {
		go func() { _, err := c.Branches(ctx, repo); done <- err }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.RequestCount(mintPath); n != 6 {
		t.Errorf("8 refused callers minted %d tokens", n-5)
	}
}

func TestWrongAppCredentials(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	in.Settings[SettingAppID] = strconv.FormatInt(a.ID+1000, 10)
	c := e.open(in)
	_, _, err := collect(t, c)
	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Fatalf("wrong app id: %v", err)
	}
	var he *forge.HostError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(he.Message, "JSON web token") {
		t.Errorf("host error %v", err)
	}
	if strings.Contains(err.Error(), "eyJ") || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Error("the error carries a credential")
	}
	// A token integration cannot list installations.
	tin, _ := e.tokenIntegration("alice")
	if _, err := e.open(tin).Installations(context.Background()); !errors.Is(err, forge.ErrUnsupported) {
		t.Errorf("token Installations: %v", err)
	}
}

func TestRepository(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, _ := e.tokenIntegration("alice")
	r := e.fake.AddRepository(githubfake.Repo{FullName: "alice/old", Private: true})
	c := e.open(in)
	ctx := context.Background()
	id := strconv.FormatInt(r.ID, 10)

	got, err := c.Repository(ctx, id, forge.Repository{FullName: "alice/old"})
	if err != nil || got.FullName != "alice/old" || got.HostID != id || !got.Private {
		t.Fatalf("Repository: %+v %v", got, err)
	}
	e.fake.RenameRepository("alice/old", "new")
	got, err = c.Repository(ctx, id, forge.Repository{FullName: "alice/old"})
	if err != nil || got.FullName != "alice/new" {
		t.Fatalf("after rename: %+v %v", got, err)
	}
	got, err = c.Repository(ctx, id, forge.Repository{})
	if err != nil || got.FullName != "alice/new" {
		t.Fatalf("by id alone: %+v %v", got, err)
	}
	// Deleted, then its name taken by another repository.
	e.fake.DeleteRepository("alice/new")
	if _, err := c.Repository(ctx, id, forge.Repository{FullName: "alice/new"}); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("deleted: %v", err)
	}
	e.fake.AddRepository(githubfake.Repo{FullName: "alice/new"})
	if _, err := c.Repository(ctx, id, forge.Repository{FullName: "alice/new"}); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("replaced: %v", err)
	}
}

func TestAppRepositoryFindsItsInstallation(t *testing.T) {
	e := newEnv(t, githubfake.Options{})
	in, a := e.appIntegration()
	r := e.fake.AddRepository(githubfake.Repo{FullName: "acme/x", Private: true})
	inst := e.fake.AddInstallation(githubfake.Installation{AppID: a.ID, Account: "acme"})
	c := e.open(in)
	got, err := c.Repository(context.Background(), strconv.FormatInt(r.ID, 10), forge.Repository{FullName: "acme/x"})
	if err != nil || got.Installation != strconv.FormatInt(inst.ID, 10) || got.Permission != forge.PermissionAdmin {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := c.Repository(context.Background(), "1", forge.Repository{FullName: "nobody/there"}); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("repository outside every installation: %v", err)
	}
}
