package azuredevops

import (
	"context"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
)

func TestFields(t *testing.T) {
	d := New()
	if d.Kind() != forge.AzureDevOps || d.Webhooks() == nil {
		t.Fatalf("Kind %q", d.Kind())
	}
	got := map[string]forge.Field{}
	for _, f := range d.Fields() {
		if f.Help == "" {
			t.Errorf("field %s has no help", f.Key)
		}
		got[f.Key] = f
	}
	if f := got[SecretToken]; !f.Secret || !f.Required || !strings.Contains(f.Help, "Personal access tokens") ||
		!strings.Contains(f.Help, "Code") || !strings.Contains(f.Help, "Project and Team") || !strings.Contains(f.Help, "Edit subscriptions") {
		t.Errorf("token field %+v", f)
	}
	for _, k := range []string{SettingWebhookUser, SettingWebhookHeader, SettingProjects, SettingPullRequestUpdates} {
		if f, ok := got[k]; !ok || f.Secret || f.Required {
			t.Errorf("setting %s: %+v", k, f)
		}
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		settings map[string]string
		token    string
		wantURL  string
		wantErr  string
	}{
		{name: "organization", url: "https://dev.azure.com/fabrikam", wantURL: "https://dev.azure.com/fabrikam"},
		{name: "trailing slash and http", url: " http://dev.azure.com/fabrikam/ ", wantURL: "https://dev.azure.com/fabrikam"},
		{name: "a pasted repository URL", url: "https://dev.azure.com/fabrikam/Fiber/_git/app", wantURL: "https://dev.azure.com/fabrikam"},
		{name: "legacy visualstudio.com", url: "https://fabrikam.visualstudio.com/DefaultCollection", wantURL: "https://dev.azure.com/fabrikam"},
		{name: "server collection", url: "https://devops.example.com:8443/tfs/DefaultCollection/", wantURL: "https://devops.example.com:8443/tfs/DefaultCollection"},
		{name: "empty", url: "", wantErr: "base URL is required"},
		{name: "no organization", url: "https://dev.azure.com/", wantErr: "must name the organization"},
		{name: "server root", url: "https://devops.example.com", wantErr: "collection URL"},
		{name: "server page", url: "https://devops.example.com/tfs/DefaultCollection/Fiber/_git/app", wantErr: "not a page inside it"},
		{name: "credentials", url: "https://user:pw@dev.azure.com/fabrikam", wantErr: "must not carry credentials"},
		{name: "query", url: "https://dev.azure.com/fabrikam?x=1", wantErr: "must not carry credentials, a query"},
		{name: "scheme", url: "ftp://dev.azure.com/fabrikam", wantErr: "absolute http(s) URL"},
		{name: "no token", url: "https://dev.azure.com/fabrikam", token: "-", wantErr: "token is required"},
		{name: "token with a newline", url: "https://dev.azure.com/fabrikam", token: "abc\ndef", wantErr: "whitespace"},
		{name: "webhook user with a colon", url: "https://dev.azure.com/fabrikam", settings: map[string]string{SettingWebhookUser: "a:b"}, wantErr: "without spaces or colons"},
		{name: "reserved header", url: "https://dev.azure.com/fabrikam", settings: map[string]string{SettingWebhookHeader: "Authorization"}, wantErr: "not a header name"},
		{name: "header with a space", url: "https://dev.azure.com/fabrikam", settings: map[string]string{SettingWebhookHeader: "X Token"}, wantErr: "not a header name"},
		{name: "project with a slash", url: "https://dev.azure.com/fabrikam", settings: map[string]string{SettingProjects: "a/b"}, wantErr: "not a project name"},
		{name: "pull request updates", url: "https://dev.azure.com/fabrikam", settings: map[string]string{SettingPullRequestUpdates: "some"}, wantErr: `"push" or "all"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := "patpatpat"
			switch tc.token {
			case "-":
				tok = ""
			case "":
			default:
				tok = tc.token
			}
			in := forge.Integration{BaseURL: tc.url, Settings: tc.settings, Secrets: map[string]string{SecretToken: tok}}
			keys, err := New().Configure(&in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Configure error %v, want %q", err, tc.wantErr)
				}
				if tok != "" && strings.Contains(err.Error(), tok) {
					t.Errorf("error reveals the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.BaseURL != tc.wantURL || keys != nil {
				t.Errorf("BaseURL %q, route keys %v", in.BaseURL, keys)
			}
			if in.Settings[SettingWebhookUser] != "forgeway" || in.Settings[SettingPullRequestUpdates] != "push" {
				t.Errorf("defaults not recorded: %v", in.Settings)
			}
		})
	}
}

func TestConfigureKeepsChoices(t *testing.T) {
	in := forge.Integration{BaseURL: "https://dev.azure.com/fabrikam", Secrets: map[string]string{SecretToken: "t"},
		Settings: map[string]string{SettingWebhookUser: "hooks", SettingWebhookHeader: "X-Forgeway-Token",
			SettingProjects: " Fiber , Web ,", SettingPullRequestUpdates: "ALL"}}
	if _, err := New().Configure(&in); err != nil {
		t.Fatal(err)
	}
	if in.Settings[SettingWebhookUser] != "hooks" || in.Settings[SettingProjects] != "Fiber,Web" || in.Settings[SettingPullRequestUpdates] != "all" {
		t.Errorf("settings %v", in.Settings)
	}
}

func TestOpenChecksTheIntegration(t *testing.T) {
	_, err := New().Open(context.Background(), forge.Integration{BaseURL: "https://dev.azure.com/x"}, forge.Env{})
	if err == nil || !strings.Contains(err.Error(), "token is required") {
		t.Errorf("Open without a token: %v", err)
	}
	c, err := New().Open(context.Background(), forge.Integration{BaseURL: "https://dev.azure.com/x", Secrets: map[string]string{SecretToken: "t"}}, forge.Env{})
	if err != nil || c.Budget() != (forge.Budget{}) {
		t.Errorf("Open: %v %+v", err, c)
	}
	if _, ok := c.(forge.HookSecretRotator); !ok {
		t.Error("the client cannot rotate hook secrets")
	}
}
