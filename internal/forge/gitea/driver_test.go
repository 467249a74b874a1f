package gitea_test

import (
	"context"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/forge/gitea/giteawebhook"
)

func TestDriverBasics(t *testing.T) {
	d := gitea.New()
	if d.Kind() != forge.Gitea {
		t.Errorf("Kind %q", d.Kind())
	}
	if _, ok := d.Webhooks().(*giteawebhook.Webhooks); !ok {
		t.Errorf("Webhooks is %T", d.Webhooks())
	}
	fields := d.Fields()
	if len(fields) != 1 || fields[0].Key != gitea.SecretToken || !fields[0].Secret || !fields[0].Required {
		t.Fatalf("fields %+v", fields)
	}
	for _, want := range []string{"Settings › Applications", "write:repository", "read:user", "administrator"} {
		if !strings.Contains(fields[0].Help, want) {
			t.Errorf("token help does not say %q", want)
		}
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name, url, token string
		want             string // the normalized base URL; "" when Configure must fail
		wantErr          string
	}{
		{"plain", "https://gitea.example.com", "t0k", "https://gitea.example.com", ""},
		{"trailing slash and case", " https://Gitea.Example.com/ ", "t0k", "https://gitea.example.com", ""},
		{"API URL pasted", "https://gitea.example.com/api/v1/", "t0k", "https://gitea.example.com", ""},
		{"swagger URL pasted", "https://gitea.example.com/api/swagger", "t0k", "https://gitea.example.com", ""},
		{"sub-path install", "https://example.com/gitea/", "t0k", "https://example.com/gitea", ""},
		{"sub-path API", "http://example.com:3000/git/api/v1", "t0k", "http://example.com:3000/git", ""},
		{"token with spaces around", "https://g.example", "  t0k \n", "https://g.example", ""},
		{"no URL", "", "t0k", "", "base URL is required"},
		{"not http", "ssh://git@g.example", "t0k", "", "absolute http(s) URL"},
		{"relative", "gitea.example.com", "t0k", "", "absolute http(s) URL"},
		{"credentials in the URL", "https://me:pw@g.example", "t0k", "", "must not carry credentials"},
		{"query", "https://g.example/?x=1", "t0k", "", "must not carry credentials"},
		{"no token", "https://g.example", "", "", "token is required"},
		{"token with a space inside", "https://g.example", "a b", "", "whitespace"},
		{"header pasted", "https://g.example", "token abc", "", "without the header's scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := forge.Integration{BaseURL: tt.url, Secrets: map[string]string{gitea.SecretToken: tt.token}}
			keys, err := gitea.New().Configure(&in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Error("the error shows the token")
				}
				if _, err := gitea.New().Open(context.Background(), in, forge.Env{}); err == nil {
					t.Error("Open accepted what Configure refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.BaseURL != tt.want || keys != nil {
				t.Errorf("BaseURL %q, route keys %v; want %q and none", in.BaseURL, keys, tt.want)
			}
		})
	}
}
