package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/forge/github/githubfake"
	"github.com/forgeway/forgeway/internal/gittest"
	"github.com/forgeway/forgeway/internal/testserver"
)

// browser follows what a person's browser does: GETs without the API token, no redirects.
func (e *env) browser(rawURL string) (int, http.Header, string) {
	e.T.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(rawURL)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

var (
	formAction   = regexp.MustCompile(`action="([^"]+)"`)
	formManifest = regexp.MustCompile(`name="manifest" value="([^"]+)"`)
	pageLink     = regexp.MustCompile(`href="([^"]+)"`)
)

// TestGitHubAppEndToEnd: create the App with GitHub's manifest flow, install it with the
// installing person's authorization, discover through the installation, receive the App's
// webhook (found by App id), mirror with installation tokens, follow suspend/unsuspend, and
// drop a person's credential when they revoke the authorization.
func TestGitHubAppEndToEnd(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng engine) {
		h := newGitHost(t)
		h.fake.AddOrg("acme")
		h.fake.AddUser("octo")
		h.fake.AddOrgMember("acme", "octo", "admin")
		h.realRepo(t, "acme/app")
		h.fake.AddRepositories("acme", 3)
		e := start(t, eng)

		var in api.Integration
		e.MustCall("POST", "/api/v1/integrations", map[string]any{
			"kind": "github", "name": "acme app", "base_url": h.fake.URL,
			"settings": map[string]string{"auth": "manifest", "organization": "acme", "app_slug": "forgeway-acme"},
		}, &in, http.StatusCreated)

		// 1. The manifest form, posted by the browser to GitHub.
		var flow api.AppFlow
		e.MustCall("GET", "/api/v1/integrations/"+in.ID+"/github/manifest", nil, &flow, 200)
		status, _, page := e.browser(flow.URL)
		if status != 200 {
			t.Fatalf("manifest page: %d %s", status, page)
		}
		action := html.UnescapeString(formAction.FindStringSubmatch(page)[1])
		manifest := html.UnescapeString(formManifest.FindStringSubmatch(page)[1])
		au, _ := url.Parse(action)
		if au.Path != "/organizations/acme/settings/apps/new" || au.Query().Get("state") == "" {
			t.Fatalf("form action %s", action)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(manifest), &m); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if jsonPath(m, "hook_attributes.url") != e.URL+"/webhooks/github" || m["redirect_url"] != e.URL+"/callback/github" || m["request_oauth_on_install"] != true {
			t.Fatalf("manifest: %s", manifest)
		}
		// 2. GitHub creates the App and sends the browser back with a code.
		code, err := h.fake.ManifestCode([]byte(manifest), "acme")
		if err != nil {
			t.Fatal(err)
		}
		status, _, page = e.browser(e.URL + "/callback/github?code=" + code + "&state=" + au.Query().Get("state"))
		if status != 200 || !strings.Contains(page, "App created") {
			t.Fatalf("manifest callback: %d %s", status, page)
		}
		app, ok := h.fake.ManifestApp("forgeway-acme")
		if !ok {
			t.Fatal("the fake has no App from the manifest")
		}
		e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &in, 200)
		if in.Settings["auth"] != "app" || in.Settings["app_id"] != fmt.Sprint(app.ID) || !contains(in.Secrets, "private_key") || in.Status != "installing" {
			t.Fatalf("integration after the conversion: %+v", in)
		}
		// The same code cannot be used twice, nor the state.
		if status, _, _ := e.browser(e.URL + "/callback/github?code=" + code + "&state=" + au.Query().Get("state")); status != 400 {
			t.Errorf("replayed callback: %d", status)
		}
		// 3. Install: Forgeway's link redirects to the App's installation page.
		installLink := html.UnescapeString(pageLink.FindStringSubmatch(page)[1])
		status, hdr, _ := e.browser(installLink)
		loc, _ := url.Parse(hdr.Get("Location"))
		if status != http.StatusFound || loc.Path != "/apps/forgeway-acme/installations/new" || loc.Query().Get("state") == "" {
			t.Fatalf("install redirect: %d %s", status, hdr.Get("Location"))
		}
		inst := h.fake.AddInstallation(githubfake.Installation{AppID: app.ID, Account: "acme"})
		oauth := h.fake.IssueOAuthCode(app.ID, "octo")
		status, _, page = e.browser(fmt.Sprintf("%s/callback/github?installation_id=%d&setup_action=install&code=%s&state=%s", e.URL, inst.ID, oauth, loc.Query().Get("state")))
		if status != 200 || !strings.Contains(page, "octo") {
			t.Fatalf("setup callback: %d %s", status, page)
		}
		var cred api.Credential
		e.MustCall("GET", "/api/v1/users/octo/credentials/"+in.ID, nil, &cred, 200)
		if !cred.Set || cred.Login != "octo" || cred.ExpiresAt == nil {
			t.Fatalf("installing person's credential: %+v", cred)
		}
		// 4. Discovery through the installation.
		testserver.Eventually(t, 30*time.Second, "discovery through the installation", func() bool { return len(e.Repos(in.ID, "")) == 4 })
		e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &in, 200)
		if in.Status != "active" || len(in.Installations) != 1 || in.Installations[0].ID != fmt.Sprint(inst.ID) || in.AppWebhookURL != e.URL+"/webhooks/github" {
			t.Fatalf("integration after installation: %+v", in)
		}
		repo := e.RepoByName(in.ID, "acme/app")
		if repo.Installation != fmt.Sprint(inst.ID) {
			t.Errorf("repository installation %q", repo.Installation)
		}
		// 5. Attach: no repository hook (the App's webhook serves), a mirror through an
		// installation token.
		var job api.Job
		e.MustCall("POST", "/api/v1/repositories/"+repo.ID+"/attach", nil, &job, http.StatusAccepted)
		e.WaitJob(job)
		if hooks := h.fake.Hooks("acme/app"); len(hooks) != 0 {
			t.Errorf("an App integration created repository hooks: %+v", hooks)
		}
		testserver.Eventually(t, 30*time.Second, "first clone", func() bool {
			repo = e.RepoByName(in.ID, "acme/app")
			return repo.Mirror != nil && repo.Mirror.Status == "ready"
		})
		// A push: GitHub delivers to the App's webhook; Forgeway finds the integration by App id.
		work := gittest.CloneWork(t, h.fake.URL+"/acme/app.git", gittest.BasicAuth("x-access-token", h.fake.IssuePAT(githubfake.PAT{Login: "octo"})))
		sha := gittest.Commit(t, work, "app.txt", "v2\n", "change the app")
		gittest.Push(t, work, gittest.BasicAuth("x-access-token", h.fake.IssuePAT(githubfake.PAT{Login: "octo"})), "main")
		testserver.Eventually(t, 30*time.Second, "mirror to hold the pushed commit", func() bool {
			ok, _ := e.App.Mirrors.HasCommit(context.Background(), repo.ID, sha)
			return ok
		})
		// 6. Installation suspended and unsuspended on GitHub.
		deliverInstallation := func(action string) {
			t.Helper()
			payload := fmt.Appendf(nil, `{"action":%q,"installation":{"id":%d,"account":{"login":"acme","type":"Organization"},"repository_selection":"all","app_id":%d},"sender":{"login":"octo"}}`, action, inst.ID, app.ID)
			ds, err := h.fake.Deliver(context.Background(), "", "installation", payload)
			if err != nil || len(ds) != 1 || ds[0].Status != http.StatusAccepted {
				t.Fatalf("deliver installation %s: %+v %v", action, ds, err)
			}
		}
		h.fake.SuspendInstallation(inst.ID, true)
		deliverInstallation("suspend")
		testserver.Eventually(t, 20*time.Second, "integration suspended", func() bool {
			e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &in, 200)
			return in.Status == "suspended"
		})
		h.fake.SuspendInstallation(inst.ID, false)
		deliverInstallation("unsuspend")
		testserver.Eventually(t, 20*time.Second, "integration active again", func() bool {
			e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &in, 200)
			return in.Status == "active"
		})
		// 7. The person revokes the App's authorization: their credential goes.
		ds, err := h.fake.Deliver(context.Background(), "", "github_app_authorization", []byte(`{"action":"revoked","sender":{"login":"octo","id":1,"type":"User"}}`))
		if err != nil || len(ds) != 1 || ds[0].Status != http.StatusAccepted {
			t.Fatalf("deliver revocation: %+v %v", ds, err)
		}
		testserver.Eventually(t, 20*time.Second, "credential deleted", func() bool {
			e.MustCall("GET", "/api/v1/users/octo/credentials/"+in.ID, nil, &cred, 200)
			return !cred.Set
		})
		var evs api.List[map[string]any]
		e.MustCall("GET", "/api/v1/events?type=dev.forgeway.installation.&integration="+in.ID, nil, &evs, 200)
		var types []string
		for _, ev := range evs.Items {
			types = append(types, ev["type"].(string))
		}
		if strings.Join(types, ",") != "dev.forgeway.installation.suspended,dev.forgeway.installation.unsuspended" {
			t.Errorf("installation events: %v", types)
		}
		// 8. Installation deleted: its repositories leave the catalog.
		deliverInstallation("deleted")
		testserver.Eventually(t, 20*time.Second, "repositories removed with the installation", func() bool {
			return len(e.Repos(in.ID, "")) == 0
		})
		testserver.Eventually(t, 20*time.Second, "integration waiting for an installation", func() bool {
			e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &in, 200)
			return in.Status == "installing"
		})
		// Installed again: the installation's delivery alone makes the integration active.
		deliverInstallation("created")
		testserver.Eventually(t, 20*time.Second, "integration active after installation.created", func() bool {
			e.MustCall("GET", "/api/v1/integrations/"+in.ID, nil, &in, 200)
			return in.Status == "active"
		})
		if e.App.Mirrors.Exists(repo.ID) {
			t.Error("the mirror of a repository the installation lost is still there")
		}

		// A wrong App id is diagnosed: GitHub refuses the App's JWT.
		var wrong api.Integration
		e.MustCall("POST", "/api/v1/integrations", map[string]any{
			"kind": "github", "base_url": h.fake.URL, "discover": false,
			"settings": map[string]string{"auth": "app", "app_id": fmt.Sprint(app.ID + 1000)},
			"secrets":  map[string]string{"private_key": app.PrivateKeyPEM()},
		}, &wrong, http.StatusCreated)
		var diag api.Diagnosis
		e.MustCall("POST", "/api/v1/integrations/"+wrong.ID+"/test", nil, &diag, 200)
		failed := false
		for _, c := range diag.Checks {
			if !c.OK && c.Hint != "" && strings.Contains(strings.ToLower(c.Detail+c.Hint), "app") {
				failed = true
			}
		}
		if diag.OK || !failed {
			t.Errorf("diagnosis of a wrong App id: %+v", diag)
		}
	})
}
