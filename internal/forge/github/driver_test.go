package github

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/forge"
)

func pkcs8PEM(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func pkcs1PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())}))
}

func ecPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestConfigure(t *testing.T) {
	app := func(base, id, key string) *forge.Integration {
		return &forge.Integration{BaseURL: base, Settings: map[string]string{SettingAuth: AuthApp, SettingAppID: id}, Secrets: map[string]string{SecretPrivateKey: key}}
	}
	tok := func(base, token string) *forge.Integration {
		return &forge.Integration{BaseURL: base, Settings: map[string]string{SettingAuth: AuthToken}, Secrets: map[string]string{SecretToken: token}}
	}
	tests := []struct {
		name      string
		in        *forge.Integration
		wantErr   string
		wantBase  string
		wantRoute string
	}{
		{"app PKCS#1", app("https://github.com", "12345", pkcs1PEM()), "", "https://github.com", "app:12345"},
		{"app PKCS#8, GHES with trailing slash", app("https://ghe.example.com/", " 7 ", pkcs8PEM(t)), "", "https://ghe.example.com", "app:7"},
		{"api.github.com becomes github.com", tok("https://api.github.com", "ghp_x"), "", "https://github.com", ""},
		{"a pasted /api/v3 is dropped", tok("https://ghe.example.com/api/v3/", "ghp_x"), "", "https://ghe.example.com", ""},
		{"empty base is github.com", tok("", "github_pat_x"), "", "https://github.com", ""},
		{"auth inferred from app_id", &forge.Integration{Settings: map[string]string{SettingAppID: "9"}, Secrets: map[string]string{SecretPrivateKey: pkcs1PEM()}}, "", "https://github.com", "app:9"},
		{"missing app_id", app("https://github.com", "", pkcs1PEM()), "app_id is required", "", ""},
		{"client id as app_id", app("https://github.com", "Iv1.abc", pkcs1PEM()), "numeric App ID", "", ""},
		{"negative app_id", app("https://github.com", "-3", pkcs1PEM()), "numeric App ID", "", ""},
		{"missing key", app("https://github.com", "1", ""), "private_key is required", "", ""},
		{"not PEM", app("https://github.com", "1", "hello"), "private_key is not PEM", "", ""},
		{"corrupt PEM", app("https://github.com", "1", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"), "not an RSA private key", "", ""},
		{"EC key", app("https://github.com", "1", ecPEM(t)), "not an RSA key", "", ""},
		{"missing token", tok("https://github.com", ""), "token is required", "", ""},
		{"token with a space", tok("https://github.com", "ghp_a b"), "whitespace", "", ""},
		{"unknown auth", &forge.Integration{Settings: map[string]string{SettingAuth: "oauth"}}, `auth must be "app", "manifest" or "token"`, "", ""},
		{"no auth at all", &forge.Integration{}, "auth is required", "", ""},
		{"relative URL", tok("ghe.example.com", "ghp_x"), "absolute http(s) URL", "", ""},
		{"ftp URL", tok("ftp://ghe.example.com", "ghp_x"), "absolute http(s) URL", "", ""},
		{"credentials in URL", tok("https://user:pw@ghe.example.com", "ghp_x"), "must not carry credentials", "", ""},
		{"bad organization", &forge.Integration{Settings: map[string]string{SettingAuth: AuthToken, SettingOrganization: "a b"}, Secrets: map[string]string{SecretToken: "t"}}, "not a GitHub login", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := New().Configure(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if key := tt.in.Secrets[SecretPrivateKey]; key != "" && strings.Contains(err.Error(), key) {
					t.Fatal("the error quotes the private key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.in.BaseURL != tt.wantBase {
				t.Errorf("BaseURL %q, want %q", tt.in.BaseURL, tt.wantBase)
			}
			if got := strings.Join(keys, ","); got != tt.wantRoute {
				t.Errorf("route keys %q, want %q", got, tt.wantRoute)
			}
			if tt.in.Settings[SettingAuth] == "" {
				t.Error("auth not recorded")
			}
		})
	}
}

func TestFields(t *testing.T) {
	d := New()
	if d.Kind() != forge.GitHub || d.Webhooks() == nil {
		t.Fatal("kind or webhooks")
	}
	seen := map[string]bool{}
	secret := map[string]bool{SecretPrivateKey: true, SecretClientSecret: true, SecretToken: true}
	for _, f := range d.Fields() {
		if seen[f.Key] || len(f.Help) < 40 {
			t.Errorf("field %q duplicated or without real help", f.Key)
		}
		seen[f.Key] = true
		if f.Secret != secret[f.Key] {
			t.Errorf("field %q: secret %v", f.Key, f.Secret)
		}
	}
	for _, k := range []string{SettingAuth, SettingAppID, SettingAppSlug, SettingClientID, SettingOrganization, SecretPrivateKey, SecretClientSecret, SecretToken} {
		if !seen[k] {
			t.Errorf("field %q undocumented", k)
		}
	}
}

func TestAPIBase(t *testing.T) {
	tests := []struct {
		web, api string
		cloud    bool
	}{
		{"https://github.com", "https://api.github.com", true},
		{"https://octo.ghe.com", "https://api.octo.ghe.com", true},
		{"https://ghe.example.com", "https://ghe.example.com/api/v3", false},
		{"http://127.0.0.1:8080/github", "http://127.0.0.1:8080/github/api/v3", false},
	}
	for _, tt := range tests {
		if api, cloud := apiBase(tt.web); api != tt.api || cloud != tt.cloud {
			t.Errorf("apiBase(%s) = %s, %v; want %s, %v", tt.web, api, cloud, tt.api, tt.cloud)
		}
	}
}
