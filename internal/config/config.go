// Package config owns Forgeway's settings: one table of every setting with its flag, its
// FORGEWAY_* environment variable, its YAML key and its default. Precedence: flag, then
// environment, then the YAML file (--config / FORGEWAY_CONFIG), then the default. The same
// table generates docs/configuration.md.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the server's configuration.
type Config struct {
	DataDir           string
	Listen            string
	WebhookListen     string
	PublicURL         string
	DatabaseURL       string
	SecretKey         string
	SecretKeysOld     string
	AdminToken        string
	LogFormat         string
	LogLevel          string
	Workers           int
	JobPoll           time.Duration
	JobLease          time.Duration
	GitTimeout        time.Duration
	ReconcileSchedule string
	InstanceID        string
	ShutdownGrace     time.Duration
	Retention         time.Duration
	SQLiteFlushSlot   bool
	SQLiteGather      bool
}

// Setting describes one configuration setting.
type Setting struct {
	Name    string // flag name and YAML key (with _ for -)
	Env     string
	Default string
	Help    string
	Secret  bool
	set     func(c *Config, v string) error
}

func str(p func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(c *Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (like 30s, 5m): %q", v)
		}
		*p(c) = d
		return nil
	}
}

func boolean(p func(c *Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("true or false: %q", v)
		}
		*p(c) = b
		return nil
	}
}

// Settings is the table of every setting.
func Settings() []Setting {
	return []Setting{
		{Name: "data-dir", Env: "FORGEWAY_DATA_DIR", Default: "./forgeway-data", Help: "Directory for the SQLite database, the secret key file and the git mirrors (created with mode 0700).", set: str(func(c *Config) *string { return &c.DataDir })},
		{Name: "listen", Env: "FORGEWAY_LISTEN", Default: ":8080", Help: "Address the HTTP server listens on (API, webhooks, metrics).", set: str(func(c *Config) *string { return &c.Listen })},
		{Name: "webhook-listen", Env: "FORGEWAY_WEBHOOK_LISTEN", Default: "", Help: "Address of a second listener that serves only the webhook endpoints (`POST /webhooks/…`, and `GET /healthz`), on a leaner HTTP/1.1 server: the port to expose to the hosts while the API stays private. Empty: none (webhooks are served on `listen` either way).", set: str(func(c *Config) *string { return &c.WebhookListen })},
		{Name: "public-url", Env: "FORGEWAY_PUBLIC_URL", Default: "http://localhost:8080", Help: "The URL hosts and browsers reach Forgeway at; webhook and callback URLs are built from it.", set: str(func(c *Config) *string { return &c.PublicURL })},
		{Name: "database-url", Env: "FORGEWAY_DATABASE_URL", Default: "", Help: "postgres://… to use PostgreSQL (several replicas share it); empty: SQLite in the data directory.", Secret: true, set: str(func(c *Config) *string { return &c.DatabaseURL })},
		{Name: "secret-key", Env: "FORGEWAY_SECRET_KEY", Default: "", Help: "32-byte key (base64) that encrypts secrets at rest; empty: a key file in the data directory, created on first start with mode 0600. Prefer the environment over the flag.", Secret: true, set: str(func(c *Config) *string { return &c.SecretKey })},
		{Name: "secret-keys-old", Env: "FORGEWAY_SECRET_KEYS_OLD", Default: "", Help: "Comma-separated older keys still needed to read values until `forgeway secrets rotate` has re-encrypted them.", Secret: true, set: str(func(c *Config) *string { return &c.SecretKeysOld })},
		{Name: "admin-token", Env: "FORGEWAY_ADMIN_TOKEN", Default: "", Help: "Bootstrap admin API token; empty: one is generated on first start and printed once.", Secret: true, set: str(func(c *Config) *string { return &c.AdminToken })},
		{Name: "log-format", Env: "FORGEWAY_LOG_FORMAT", Default: "auto", Help: "auto (text on a terminal, JSON otherwise), text or json.", set: str(func(c *Config) *string { return &c.LogFormat })},
		{Name: "log-level", Env: "FORGEWAY_LOG_LEVEL", Default: "info", Help: "debug, info, warn or error.", set: str(func(c *Config) *string { return &c.LogLevel })},
		{Name: "workers", Env: "FORGEWAY_WORKERS", Default: "8", Help: "Jobs this process runs at once (processing, discovery, git). 0 makes an ingest-and-API replica that runs no jobs; other replicas on the same PostgreSQL database run them.", set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 256 {
				return fmt.Errorf("a number from 0 to 256: %q", v)
			}
			c.Workers = n
			return nil
		}},
		{Name: "job-poll", Env: "FORGEWAY_JOB_POLL", Default: "500ms", Help: "How often idle workers look for due jobs (jobs inserted by this process wake them at once).", set: dur(func(c *Config) *time.Duration { return &c.JobPoll })},
		{Name: "job-lease", Env: "FORGEWAY_JOB_LEASE", Default: "30s", Help: "How long a running job is held without renewal (renewed every third of it); a job of a replica that died runs again after this.", set: dur(func(c *Config) *time.Duration { return &c.JobLease })},
		{Name: "git-timeout", Env: "FORGEWAY_GIT_TIMEOUT", Default: "10m", Help: "Longest a single git clone, fetch or push may run.", set: dur(func(c *Config) *time.Duration { return &c.GitTimeout })},
		{Name: "reconcile-schedule", Env: "FORGEWAY_RECONCILE_SCHEDULE", Default: "17 * * * *", Help: "Cron expression: when hooks of attached repositories are checked and repaired.", set: str(func(c *Config) *string { return &c.ReconcileSchedule })},
		{Name: "retention", Env: "FORGEWAY_RETENTION", Default: "720h", Help: "How long processed deliveries (with their events) and finished jobs are kept; pruned daily. 0 keeps them forever. Deliveries older than this are no longer deduplicated.", set: dur(func(c *Config) *time.Duration { return &c.Retention })},
		{Name: "sqlite-flush-slot", Env: "FORGEWAY_SQLITE_FLUSH_SLOT", Default: "true", Help: "SQLite on Linux: each flush of the write-ahead log (one `fdatasync` per group commit of deliveries) keeps its Go scheduler slot while the disk works, and the process runs one slot more than it has CPUs (GOMAXPROCS + 1, unless the GOMAXPROCS environment variable is set), so that a group commit's answers go out as soon as the disk is done instead of queuing behind the request handlers. After one such flush slower than 25ms, flushes release the slot for 10 seconds. false: flushes release it, as every other system call does.", set: boolean(func(c *Config) *bool { return &c.SQLiteFlushSlot })},
		{Name: "sqlite-gather-writes", Env: "FORGEWAY_SQLITE_GATHER_WRITES", Default: "true", Help: "SQLite: the writer and the checkpointer write through a VFS that gathers SQLite's contiguous writes into one system call: a group commit's write-ahead log frames (two `pwrite`s each otherwise) in one, and a checkpoint's runs of pages in one each. Every commit's frames are written before SQLite publishes the commit, and a failed write fails the commit, as with SQLite's own VFS. false: SQLite's default VFS.", set: boolean(func(c *Config) *bool { return &c.SQLiteGather })},
		{Name: "instance-id", Env: "FORGEWAY_INSTANCE_ID", Default: "", Help: "Name of this replica in job leases and logs; empty: hostname and process id.", set: str(func(c *Config) *string { return &c.InstanceID })},
		{Name: "shutdown-grace", Env: "FORGEWAY_SHUTDOWN_GRACE", Default: "20s", Help: "How long running requests and jobs get to finish on SIGTERM.", set: dur(func(c *Config) *time.Duration { return &c.ShutdownGrace })},
	}
}

// Load builds the configuration from a flag set already parsed (its flags registered with
// Register), the environment (getenv) and the YAML file named by --config or FORGEWAY_CONFIG.
func Load(fs *flag.FlagSet, getenv func(string) string) (Config, error) {
	var c Config
	explicit := map[string]string{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = f.Value.String() })
	file := explicit["config"]
	if file == "" {
		file = getenv("FORGEWAY_CONFIG")
	}
	fromFile := map[string]string{}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("read config file: %w", err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return c, fmt.Errorf("config file %s: %w", file, err)
		}
		known := map[string]bool{}
		for _, s := range Settings() {
			known[yamlKey(s.Name)] = true
		}
		for k, v := range doc {
			if !known[k] {
				return c, fmt.Errorf("config file %s: unknown setting %q", file, k)
			}
			fromFile[k] = fmt.Sprint(v)
		}
	}
	var errs []error
	for _, s := range Settings() {
		v, ok := explicit[s.Name]
		if !ok {
			v = getenv(s.Env)
			ok = v != ""
		}
		if !ok {
			v, ok = fromFile[yamlKey(s.Name)]
		}
		if !ok {
			v = s.Default
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.validate()
}

func yamlKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Register adds every setting's flag (and --config) to fs.
func Register(fs *flag.FlagSet) {
	fs.String("config", "", "YAML configuration file (also FORGEWAY_CONFIG)")
	for _, s := range Settings() {
		fs.String(s.Name, "", s.Help+" (env "+s.Env+", default "+quoteDefault(s.Default)+")")
	}
}

func quoteDefault(d string) string {
	if d == "" {
		return "none"
	}
	return d
}

func (c *Config) validate() error {
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public-url must be an absolute http(s) URL, got %q", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return fmt.Errorf("log-format must be auto, text or json, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	c.DataDir = abs
	return nil
}

// DatabaseDSN is the database to open: the URL, or the SQLite file in the data directory.
func (c Config) DatabaseDSN() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, "forgeway.db")
}

// Markdown renders docs/configuration.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Configuration\n\nEvery setting can be given as a flag of `forgeway serve`, as an environment variable, or in a YAML file named by `--config` (or `FORGEWAY_CONFIG`) with the flag's name and `_` for `-` as its key. A flag wins over the environment, which wins over the file.\n\nSettings marked secret should come from the environment (or a file readable only by Forgeway's user): flags are visible in the process list.\n\n")
	b.WriteString("| flag | environment | default | secret | what it does |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range Settings() {
		secret := ""
		if s.Secret {
			secret = "yes"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s | %s |\n", s.Name, s.Env, mdDefault(s.Default), secret, s.Help)
	}
	b.WriteString("\nExample `forgeway.yaml`:\n\n```yaml\ndata_dir: /var/lib/forgeway\npublic_url: https://forgeway.example.com\nworkers: 16\nlog_format: json\n```\n\nPer-integration settings (a CA bundle, skipping TLS verification, the rate-limit reserve, the filter and the discovery schedule) are part of each integration: see `docs/api.md`.\n")
	return b.String()
}

func mdDefault(d string) string {
	if d == "" {
		return "(none)"
	}
	return "`" + d + "`"
}
