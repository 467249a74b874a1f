package gitlab_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitlab"
)

func TestFields(t *testing.T) {
	d := gitlab.New()
	if d.Kind() != forge.GitLab {
		t.Fatalf("Kind = %s", d.Kind())
	}
	secret := map[string]bool{}
	for _, f := range d.Fields() {
		if len(f.Help) < 40 {
			t.Errorf("field %s has too little help: %q", f.Key, f.Help)
		}
		secret[f.Key] = f.Secret
	}
	for _, k := range []string{gitlab.SecretToken, gitlab.SecretClientSecret, gitlab.SecretAccessToken, gitlab.SecretRefreshToken, gitlab.SecretTokenExpires, gitlab.SecretSigningToken} {
		if s, ok := secret[k]; !ok || !s {
			t.Errorf("%s is not a documented secret", k)
		}
	}
	for _, k := range []string{gitlab.SettingAuth, gitlab.SettingClientID, gitlab.SettingRedirectURI} {
		if s, ok := secret[k]; !ok || s {
			t.Errorf("%s is not a documented setting", k)
		}
	}
	if d.Webhooks() == nil {
		t.Error("no Webhooks")
	}
}

func TestConfigure(t *testing.T) {
	oauth := map[string]string{gitlab.SecretClientSecret: "s", gitlab.SecretAccessToken: "a", gitlab.SecretRefreshToken: "r"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []struct {
		name     string
		in       forge.Integration
		wantBase string
		wantAuth string
		wantErr  string
	}{
		{name: "gitlab.com by default", in: forge.Integration{Secrets: map[string]string{"token": "glpat-x"}},
			wantBase: "https://gitlab.com", wantAuth: "token"},
		{name: "trailing slash and /api/v4 dropped", in: forge.Integration{BaseURL: " https://gitlab.example.com/api/v4/ ", Secrets: map[string]string{"token": "t"}},
			wantBase: "https://gitlab.example.com", wantAuth: "token"},
		{name: "relative URL root kept", in: forge.Integration{BaseURL: "https://example.com/gitlab/", Secrets: map[string]string{"token": "t"}},
			wantBase: "https://example.com/gitlab", wantAuth: "token"},
		{name: "www.gitlab.com", in: forge.Integration{BaseURL: "https://www.gitlab.com", Secrets: map[string]string{"token": "t"}},
			wantBase: "https://gitlab.com", wantAuth: "token"},
		{name: "oauth inferred", in: forge.Integration{BaseURL: "https://gitlab.example.com", Settings: map[string]string{"client_id": "c"}, Secrets: oauth},
			wantBase: "https://gitlab.example.com", wantAuth: "oauth"},
		{name: "oauth with expiry", in: forge.Integration{Settings: map[string]string{"auth": "oauth", "client_id": "c", "redirect_uri": "https://fw.example.com/callback/gitlab"},
			Secrets: with(oauth, gitlab.SecretTokenExpires, "2026-11-20T14:00:00Z")}, wantBase: "https://gitlab.com", wantAuth: "oauth"},
		{name: "signing token", in: forge.Integration{Secrets: map[string]string{"token": "t", "signing_token": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			wantBase: "https://gitlab.com", wantAuth: "token"},

		{name: "no token", in: forge.Integration{}, wantErr: `token is required`},
		{name: "token with a newline", in: forge.Integration{Secrets: map[string]string{"token": "glpat-a\nb"}}, wantErr: "whitespace"},
		{name: "not a URL", in: forge.Integration{BaseURL: "gitlab.example.com", Secrets: map[string]string{"token": "t"}}, wantErr: "absolute http(s) URL"},
		{name: "credentials in the URL", in: forge.Integration{BaseURL: "https://u:p@gitlab.example.com", Secrets: map[string]string{"token": "t"}}, wantErr: "must not carry credentials"},
		{name: "unknown auth", in: forge.Integration{Settings: map[string]string{"auth": "app"}}, wantErr: `auth must be "token" or "oauth"`},
		{name: "oauth without client", in: forge.Integration{Settings: map[string]string{"auth": "oauth"}, Secrets: oauth}, wantErr: "client_id and client_secret are required"},
		{name: "oauth without refresh token", in: forge.Integration{Settings: map[string]string{"auth": "oauth", "client_id": "c"},
			Secrets: with(oauth, gitlab.SecretRefreshToken, "")}, wantErr: "access_token and refresh_token are required"},
		{name: "bad expiry", in: forge.Integration{Settings: map[string]string{"auth": "oauth", "client_id": "c"},
			Secrets: with(oauth, gitlab.SecretTokenExpires, "tomorrow")}, wantErr: "RFC 3339"},
		{name: "bad redirect", in: forge.Integration{Settings: map[string]string{"redirect_uri": "/callback/gitlab"}, Secrets: map[string]string{"token": "t"}}, wantErr: "redirect_uri"},
		{name: "bad signing token", in: forge.Integration{Secrets: map[string]string{"token": "t", "signing_token": "whsec_?"}}, wantErr: "signing_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			keys, err := gitlab.New().Configure(&in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Configure error %v, want one saying %q", err, tc.wantErr)
				}
				noSecret(t, err, "glpat-x", "glpat-a")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 0 {
				t.Errorf("route keys %v; GitLab delivers to the integration's URL", keys)
			}
			if in.BaseURL != tc.wantBase || in.Settings[gitlab.SettingAuth] != tc.wantAuth {
				t.Errorf("configured %q, auth %q; want %q, %q", in.BaseURL, in.Settings[gitlab.SettingAuth], tc.wantBase, tc.wantAuth)
			}
			// Open accepts what Configure accepted, without the network.
			if _, err := gitlab.New().Open(context.Background(), in, forge.Env{}); err != nil {
				t.Errorf("Open: %v", err)
			}
		})
	}
}

func TestConfigureNormalizesSigningToken(t *testing.T) {
	in := forge.Integration{Secrets: map[string]string{"token": "t", "signing_token": " MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw "}}
	if _, err := gitlab.New().Configure(&in); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", in.Secrets["signing_token"]); diff != "" {
		t.Error(diff)
	}
}

// TestNoManifest: GitLab cannot create its OAuth application (no app-manifest flow), and
// authorizing needs one configured.
func TestNoManifest(t *testing.T) {
	if _, ok := gitlab.New().(forge.AppManifest); ok {
		t.Error("the GitLab driver claims an app-manifest flow")
	}
	as := gitlab.New().(forge.Authorizer)
	if _, err := as.InstallURL(forge.Integration{Secrets: map[string]string{"token": "t"}}, "st"); err == nil || !strings.Contains(err.Error(), "client_id") {
		t.Errorf("InstallURL without an OAuth application: %v", err)
	}
}
