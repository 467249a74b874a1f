package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, func(k string) string { return env[k] })
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.yaml")
	os.WriteFile(file, []byte("workers: 3\nlisten: \":9000\"\nlog_level: warn\n"), 0o600)
	c, err := load(t, []string{"--config", file, "--workers", "5"}, map[string]string{"FORGEWAY_LISTEN": ":7000"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 5 || c.Listen != ":7000" || c.LogLevel != "warn" || c.JobPoll != 500*time.Millisecond || !c.SQLiteFlushSlot || !c.SQLiteGather {
		t.Fatalf("got %+v", c)
	}
	if !filepath.IsAbs(c.DataDir) || !strings.HasSuffix(c.DatabaseDSN(), "forgeway.db") {
		t.Fatalf("data dir %q dsn %q", c.DataDir, c.DatabaseDSN())
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--workers", "-1"}, nil, "workers"},
		{[]string{"--job-poll", "soon"}, nil, "job-poll"},
		{nil, map[string]string{"FORGEWAY_PUBLIC_URL": "localhost:8080"}, "public-url"},
		{[]string{"--log-format", "xml"}, nil, "log-format"},
		{nil, map[string]string{"FORGEWAY_SQLITE_FLUSH_SLOT": "sometimes"}, "sqlite-flush-slot"},
		{[]string{"--sqlite-gather-writes=maybe"}, nil, "sqlite-gather-writes"},
	} {
		_, err := load(t, tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: err %v, want mention of %s", tc.args, tc.env, err, tc.want)
		}
	}
	file := filepath.Join(t.TempDir(), "f.yaml")
	os.WriteFile(file, []byte("wokers: 3\n"), 0o600)
	if _, err := load(t, []string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), "wokers") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestBooleanSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(file, []byte("sqlite_flush_slot: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, true},
		{[]string{"--config", file}, nil, false},
		{[]string{"--config", file}, map[string]string{"FORGEWAY_SQLITE_FLUSH_SLOT": "true"}, true},
		{[]string{"--sqlite-flush-slot=0"}, map[string]string{"FORGEWAY_SQLITE_FLUSH_SLOT": "true"}, false},
	} {
		c, err := load(t, tc.args, tc.env)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		if c.SQLiteFlushSlot != tc.want {
			t.Errorf("%v %v: sqlite-flush-slot %v, want %v", tc.args, tc.env, c.SQLiteFlushSlot, tc.want)
		}
	}
}

func TestDocsUpToDate(t *testing.T) {
	raw, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("docs/configuration.md: %v (regenerate with: go run ./cmd/forgeway docs config > docs/configuration.md)", err)
	}
	if string(raw) != Markdown() {
		t.Fatal("docs/configuration.md is stale; regenerate with: go run ./cmd/forgeway docs config > docs/configuration.md")
	}
}
