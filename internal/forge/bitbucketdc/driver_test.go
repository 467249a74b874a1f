package bitbucketdc_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc/bbwebhook"
)

func TestDriverBasics(t *testing.T) {
	d := bitbucketdc.New()
	if d.Kind() != forge.BitbucketDC {
		t.Errorf("Kind = %q", d.Kind())
	}
	fields := d.Fields()
	if len(fields) != 1 || fields[0].Key != bitbucketdc.SecretToken || !fields[0].Secret || !fields[0].Required {
		t.Fatalf("Fields = %+v", fields)
	}
	for _, want := range []string{"HTTP access tokens", "Project read", "Repository admin", "Manage account"} {
		if !strings.Contains(fields[0].Help, want) {
			t.Errorf("the token's help does not say %q", want)
		}
	}
	if _, ok := d.Webhooks().(*bbwebhook.Webhooks); !ok {
		t.Errorf("Webhooks = %T", d.Webhooks())
	}
}

func TestConfigure(t *testing.T) {
	const tok = "MDM0MjM5NDc2MDxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	for _, tc := range []struct {
		name, url, token string
		want             string // normalized base URL; "" when an error is expected
		errHas           string
	}{
		{"plain", "https://bitbucket.example.com", tok, "https://bitbucket.example.com", ""},
		{"trailing slash and spaces", "  https://bitbucket.example.com/ ", tok, "https://bitbucket.example.com", ""},
		{"context path", "https://example.com/bitbucket/", tok, "https://example.com/bitbucket", ""},
		{"pasted REST URL", "https://example.com/bitbucket/rest/api/1.0/projects", tok, "https://example.com/bitbucket", ""},
		{"pasted browse URL", "http://bb.local:7990/projects/PRJ/repos/x/browse", tok, "http://bb.local:7990", ""},
		{"missing URL", "", tok, "", "base URL is required"},
		{"not http", "ftp://bitbucket.example.com", tok, "", "absolute http(s) URL"},
		{"credentials in URL", "https://u:p@bitbucket.example.com", tok, "", "must not carry credentials"},
		{"query", "https://bitbucket.example.com?x=1", tok, "", "must not carry credentials, a query"},
		{"no token", "https://bitbucket.example.com", "  ", "", "token is required"},
		{"Bearer pasted", "https://bitbucket.example.com", "Bearer " + tok, "", "whitespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := forge.Integration{ID: "int_1", BaseURL: tc.url, Secrets: map[string]string{bitbucketdc.SecretToken: tc.token}}
			keys, err := bitbucketdc.New().Configure(&in)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("Configure error = %v, want one saying %q", err, tc.errHas)
				}
				noToken(t, err.Error(), tok)
				return
			}
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if in.BaseURL != tc.want || keys != nil {
				t.Errorf("BaseURL %q, route keys %v; want %q, none", in.BaseURL, keys, tc.want)
			}
		})
	}
}

// Open and Configure call nothing on the network.
func TestOpenCallsNothing(t *testing.T) {
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
		return nil, http.ErrHandlerTimeout
	})}
	in := forge.Integration{BaseURL: "https://bitbucket.example.com", Secrets: map[string]string{bitbucketdc.SecretToken: "tok"}}
	if _, err := bitbucketdc.New().Configure(&in); err != nil {
		t.Fatal(err)
	}
	c, err := bitbucketdc.New().Open(context.Background(), in, forge.Env{HTTP: client})
	if err != nil || c == nil {
		t.Fatalf("Open: %v", err)
	}
	if _, ok := c.(forge.HookSecretRotator); !ok {
		t.Error("the client does not rotate hook secrets")
	}
	if _, ok := c.(forge.Installations); ok {
		t.Error("a Bitbucket client has no installations")
	}
	if err := c.(forge.HookSecretRotator).RotateIntegrationHook(context.Background(), forge.HookSpec{URL: "https://x", Secret: "s"}); err != nil {
		t.Errorf("RotateIntegrationHook = %v, want nil (no integration-wide hook)", err)
	}
	in.Secrets[bitbucketdc.SecretToken] = ""
	if _, err := bitbucketdc.New().Open(context.Background(), in, forge.Env{HTTP: client}); err == nil {
		t.Error("Open without a token succeeded")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
