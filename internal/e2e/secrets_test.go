package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgeway/forgeway/internal/cli"
	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/secrets"
	"github.com/forgeway/forgeway/internal/server"
	"github.com/forgeway/forgeway/internal/testserver"
)

func loadConfig(t *testing.T, env map[string]string, args ...string) config.Config {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	config.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fs, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSecretsRotate re-encrypts every stored secret under a new key, with the key file and
// with FORGEWAY_SECRET_KEY, and checks the values survive while the old key reads nothing.
func TestSecretsRotate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--log-level", "error"}
	open := func(env map[string]string) (*server.App, error) {
		return server.New(ctx, loadConfig(t, env, args...), server.Options{Logger: testserver.TestLogger(t)})
	}
	app, err := open(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := app.Integrations.Prepare(integrations.Input{Kind: "github", BaseURL: "https://github.example.com",
		Settings: map[string]string{"auth": "token"}, Secrets: map[string]string{"token": "ghp_rotate_me"}, WebhookSecret: "hook-secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Store.CreateIntegration(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	if err := app.Integrations.PutUserCredential(ctx, app.Store, rec.ID, "octo", forge.UserCredential{Login: "octo", Token: "ghu_person"}); err != nil {
		t.Fatal(err)
	}
	app.Close()
	keyFile := filepath.Join(dir, "secret.key")
	before, _, err := secrets.KeyFile{Path: keyFile}.Load()
	if err != nil {
		t.Fatal(err)
	}

	run := func(env map[string]string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		code := cli.Main(ctx, append([]string{"secrets", "rotate"}, args...), strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] })
		if code != 0 {
			t.Fatalf("secrets rotate: exit %d: %s%s", code, out.String(), errOut.String())
		}
		return out.String()
	}
	check := func(env map[string]string, wantKey []byte) {
		t.Helper()
		app, err := open(env)
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		got, err := app.Store.GetIntegration(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		fi, hooks, err := app.Integrations.Open(got)
		if err != nil || fi.Secrets["token"] != "ghp_rotate_me" || hooks[0] != "hook-secret" {
			t.Fatalf("secrets after rotation: %v %v %v", fi.Secrets, hooks, err)
		}
		for _, v := range [][]byte{got.SecretsEnc, got.WebhookEnc} {
			if secrets.SealedKeyID(v) != secrets.KeyID(wantKey) {
				t.Errorf("a value is sealed under %s, want %s", secrets.SealedKeyID(v), secrets.KeyID(wantKey))
			}
		}
		cred, err := app.Integrations.UserCredential(ctx, got, "octo")
		if err != nil || cred.Token != "ghu_person" {
			t.Fatalf("user credential after rotation: %+v %v", cred, err)
		}
	}

	// 1. The key file: a new key is generated; the file ends with it alone.
	out := run(nil)
	after, _, err := secrets.KeyFile{Path: keyFile}.Load()
	if err != nil || len(after) != 1 || bytes.Equal(after[0], before[0]) || !strings.Contains(out, "Re-encrypted") {
		t.Fatalf("key file after rotation: %d keys, %v; %s", len(after), err, out)
	}
	check(nil, after[0])
	oldRing, _ := secrets.New(before[0])
	app, _ = open(nil)
	got, _ := app.Store.GetIntegration(ctx, rec.ID)
	app.Close()
	if _, err := oldRing.Open(got.SecretsEnc); err == nil {
		t.Error("the old key still opens the secrets")
	}

	// 2. FORGEWAY_SECRET_KEY: the operator's new key, the old one kept readable meanwhile.
	newKey, _ := secrets.GenerateKey()
	env := map[string]string{
		"FORGEWAY_SECRET_KEY":      base64.StdEncoding.EncodeToString(newKey),
		"FORGEWAY_SECRET_KEYS_OLD": base64.StdEncoding.EncodeToString(after[0]),
	}
	if out := run(env); !strings.Contains(out, "remove FORGEWAY_SECRET_KEYS_OLD") {
		t.Errorf("env rotation output: %s", out)
	}
	check(map[string]string{"FORGEWAY_SECRET_KEY": env["FORGEWAY_SECRET_KEY"]}, newKey)

	// A server given a key that did not encrypt the data refuses to start, and says why.
	other, _ := secrets.GenerateKey()
	if _, err := open(map[string]string{"FORGEWAY_SECRET_KEY": base64.StdEncoding.EncodeToString(other)}); err == nil || !strings.Contains(err.Error(), "FORGEWAY_SECRET_KEY") {
		t.Fatalf("start with the wrong key: %v", err)
	}
	// The key file is never world-readable.
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o", st.Mode().Perm())
	}
}
