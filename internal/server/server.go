// Package server assembles a Forgeway process: configuration, logging, the store, the
// keyring, the drivers, the services, the job runner and scheduler, and the HTTP server
// (webhooks, API, callbacks, health and metrics). It owns start-up (first-start bootstrap:
// key file, admin token) and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/api"
	"github.com/forgeway/forgeway/internal/catalog"
	"github.com/forgeway/forgeway/internal/config"
	"github.com/forgeway/forgeway/internal/events"
	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/forge/azuredevops"
	"github.com/forgeway/forgeway/internal/forge/bitbucketdc"
	"github.com/forgeway/forgeway/internal/forge/gitea"
	"github.com/forgeway/forgeway/internal/forge/github"
	"github.com/forgeway/forgeway/internal/forge/gitlab"
	"github.com/forgeway/forgeway/internal/gitmirror"
	"github.com/forgeway/forgeway/internal/ingest"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/metrics"
	"github.com/forgeway/forgeway/internal/outbound"
	"github.com/forgeway/forgeway/internal/problem"
	"github.com/forgeway/forgeway/internal/secrets"
	"github.com/forgeway/forgeway/internal/store"
	"github.com/forgeway/forgeway/internal/store/sqlstore"
)

// Version is set at build time with -ldflags "-X …/server.Version=…".
var Version = "dev"

// Drivers returns every host driver Forgeway ships.
func Drivers() []forge.Driver {
	return []forge.Driver{github.New(), gitlab.New(), bitbucketdc.New(), azuredevops.New(), gitea.New()}
}

// App is an assembled Forgeway process.
type App struct {
	Config       config.Config
	Log          *slog.Logger
	Store        *sqlstore.DB
	Keys         *secrets.Keyring
	Integrations *integrations.Service
	Catalog      *catalog.Service
	Processor    *events.Processor
	API          *api.Server
	Ingest       *ingest.Handler
	Metrics      *metrics.Metrics
	Runner       *jobs.Runner
	Mirrors      *gitmirror.Manager
	Broker       *events.Broker
	// Outbound delivers events to subscriptions (it runs beside the job runner).
	Outbound *outbound.Service
	Handler  http.Handler
	// Out receives the one-time bootstrap messages (the admin token); os.Stdout in serve.
	Out io.Writer
}

// Options tunes New beyond the configuration (tests use them).
type Options struct {
	Out     io.Writer
	Drivers []forge.Driver
	Logger  *slog.Logger
	Now     func() time.Time
	// Outbound tunes subscription delivery (tests shorten the retry schedule and timeout);
	// its Store, Keys, Broker, Owner, Retention and Logger are set by New.
	Outbound outbound.Options
}

// New assembles the process: it opens (and migrates) the database, loads or creates the
// secret key, creates the admin token on first start, and wires every service. Nothing runs
// until Run.
func New(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	a := &App{Config: cfg, Out: o.Out}
	if a.Out == nil {
		a.Out = io.Discard
	}
	a.Log = o.Logger
	if a.Log == nil {
		a.Log = NewLogger(cfg, os.Stderr)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	keys, err := loadKeys(cfg, a.Log)
	if err != nil {
		return nil, err
	}
	a.Keys = keys
	st, err := sqlstore.Open(ctx, cfg.DatabaseDSN(), sqlstore.Options{HoldFlushP: flushSlot(cfg, a.Log), PlainWrites: !cfg.SQLiteGather})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	a.Store = st
	if err := checkKeys(ctx, st, keys); err != nil {
		st.Close()
		return nil, err
	}
	if err := a.bootstrapAdmin(ctx); err != nil {
		st.Close()
		return nil, err
	}
	drivers := o.Drivers
	if drivers == nil {
		drivers = Drivers()
	}
	a.Broker = events.NewBroker()
	var ints *integrations.Service
	a.Metrics = metrics.New(st.JobStats, func() map[string]forge.Budget { return ints.Budgets() })
	a.Metrics.WatchGroupCommits(st.CommitStats)
	if st.Dialect() == "sqlite" {
		a.Metrics.WatchCheckpoints(st.CheckpointStats)
		a.Metrics.WatchWALFlushes(st.FlushStats)
		if _, gathered := st.WriteStats(); gathered {
			a.Metrics.WatchSQLiteWrites(func() metrics.SQLiteWrites {
				s, _ := st.WriteStats()
				return metrics.SQLiteWrites{WALAsked: s.WALWrites, WALMade: s.WALWritten, DBAsked: s.DBWrites, DBMade: s.DBWritten, WALLate: s.WALLate}
			})
		}
	}
	ints = integrations.New(integrations.Options{Store: st, Keys: keys, Drivers: drivers, PublicURL: cfg.PublicURL, Logger: a.Log, Observe: a.Metrics.HostRequest, Now: o.Now})
	a.Integrations = ints
	a.Runner = jobs.NewRunner(st, jobs.RunnerOptions{Owner: cfg.InstanceID, Workers: cfg.Workers, Poll: cfg.JobPoll, Lease: cfg.JobLease, Logger: a.Log, Observer: a.Metrics})
	notify := a.Runner.Notify
	a.Mirrors = gitmirror.New(filepath.Join(cfg.DataDir, "mirrors"), gitmirror.Options{Timeout: cfg.GitTimeout, Logger: a.Log})
	a.Catalog = catalog.New(catalog.Options{Integrations: ints, Mirrors: a.Mirrors, DataDir: cfg.DataDir, Logger: a.Log, Notify: notify, Now: o.Now})
	a.Processor = events.NewProcessor(events.ProcessorOptions{Integrations: ints, Applier: a.Catalog, Broker: a.Broker, Logger: a.Log, Notify: notify, Outcome: a.Metrics.Processed})
	a.Catalog.Register(a.Runner)
	a.Processor.Register(a.Runner)
	a.Runner.Register(JobPrune, a.runPrune, jobs.KindOptions{MaxAttempts: 3, Timeout: time.Hour})
	a.Ingest = ingest.New(ingest.Options{Integrations: ints, Logger: a.Log, Notify: notify, Observe: a.Metrics.Delivery, Now: o.Now})
	oo := o.Outbound
	oo.Store, oo.Keys, oo.Broker, oo.Owner, oo.Retention, oo.Logger = st, keys, a.Broker, cfg.InstanceID, cfg.Retention, a.Log
	a.Outbound = outbound.New(oo)
	a.API = api.New(api.Options{Integrations: ints, Catalog: a.Catalog, Broker: a.Broker, Logger: a.Log, Notify: notify, Now: o.Now, Version: Version, Subscriptions: a.Outbound})
	a.Handler = a.routes()
	return a, nil
}

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	a.Ingest.Register(mux)
	a.API.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := a.Store.Ping(ctx); err != nil {
			problem.Send(w, http.StatusServiceUnavailable, "not-ready", "Not ready", err.Error(), "Check the database connection and that migrations ran.")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", a.Metrics.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Send(w, http.StatusNotFound, "not-found", "No such endpoint", r.Method+" "+r.URL.Path, "The API is under /api/v1 (see /api/v1/openapi.json); webhooks go to /webhooks/{kind}/{integration_id}.")
	})
	return mux
}

// Run serves until ctx is cancelled, then shuts down within the configured grace.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Config.Listen, err)
	}
	var hooks net.Listener
	if a.Config.WebhookListen != "" {
		if hooks, err = net.Listen("tcp", a.Config.WebhookListen); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen for webhooks on %s: %w", a.Config.WebhookListen, err)
		}
	}
	return a.ServeListeners(ctx, ln, hooks)
}

// ServeListeners is Run on existing listeners: ln for everything, hooks (when not nil) for
// the webhook endpoints alone (ingest.Listener).
func (a *App) ServeListeners(ctx context.Context, ln, hooks net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	runCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	done := make(chan error, 5)
	var workers sync.WaitGroup
	workers.Add(3)
	go func() {
		defer workers.Done()
		if a.Config.Workers == 0 {
			a.Log.Info("this replica runs no jobs (workers 0): it ingests and serves the API")
			<-runCtx.Done()
			return
		}
		done <- a.Runner.Run(runCtx)
	}()
	go func() {
		defer workers.Done()
		if a.Config.Workers == 0 {
			<-runCtx.Done() // no background work here, subscription deliveries included
			return
		}
		done <- a.Outbound.Run(runCtx)
	}()
	go func() { defer workers.Done(); done <- a.schedule(runCtx) }()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			done <- err
		}
	}()
	var webhooks *ingest.Listener
	if hooks != nil {
		webhooks = a.Ingest.NewListener(runCtx, ingest.ListenerOptions{ReadTimeout: srv.ReadTimeout, IdleTimeout: srv.IdleTimeout})
		go func() {
			if err := webhooks.Serve(hooks); err != nil {
				done <- err
			}
		}()
		a.Log.Info("webhook listener serving", "listen", hooks.Addr().String())
	}
	a.Log.Info("forgeway serving", "listen", ln.Addr().String(), "public_url", a.Config.PublicURL, "database", redactDSN(a.Config.DatabaseDSN()), "instance", a.Config.InstanceID, "version", Version)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-done:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownGrace)
	defer cancel()
	a.Log.Info("shutting down")
	if webhooks != nil {
		_ = webhooks.Shutdown(shutCtx)
	}
	_ = srv.Shutdown(shutCtx)
	stopJobs()
	// The caller closes the database after Serve: every job must have stopped by then.
	workers.Wait()
	return runErr
}

// Close releases the database.
func (a *App) Close() error { return a.Store.Close() }

// NewLogger makes the process logger: text on a terminal, JSON otherwise (or as configured).
func NewLogger(cfg config.Config, w *os.File) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if st, err := w.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// redactDSN hides a database URL's password for logs.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return dsn[:i+3] + rest[:colon] + ":***" + rest[at:]
			}
		}
	}
	return dsn
}

// loadKeys builds the keyring from FORGEWAY_SECRET_KEY (+ old keys) or the key file in the
// data directory, created with mode 0600 on first start.
func loadKeys(cfg config.Config, log *slog.Logger) (*secrets.Keyring, error) {
	var keys [][]byte
	if cfg.SecretKey != "" {
		k, err := secrets.ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("FORGEWAY_SECRET_KEY: %w", err)
		}
		keys = append(keys, k)
	} else {
		f := secrets.KeyFile{Path: filepath.Join(cfg.DataDir, "secret.key")}
		fileKeys, created, err := f.Load()
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("created the secret key file; back it up: without it stored credentials cannot be read", "path", f.Path)
		}
		keys = append(keys, fileKeys...)
	}
	for _, s := range strings.Split(cfg.SecretKeysOld, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := secrets.ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("FORGEWAY_SECRET_KEYS_OLD: %w", err)
		}
		keys = append(keys, k)
	}
	return secrets.New(keys[0], keys[1:]...)
}

// checkKeys refuses to start when the database holds secrets sealed under a key the keyring
// does not have: better to stop now than to fail on every host call.
func checkKeys(ctx context.Context, st store.Store, keys *secrets.Keyring) error {
	known := map[string]bool{}
	for _, id := range keys.IDs() {
		known[id] = true
	}
	var unknown string
	recs, err := st.ListIntegrations(ctx)
	if err != nil {
		return fmt.Errorf("check secret key: %w", err)
	}
	for _, rec := range recs {
		for _, v := range [][]byte{rec.SecretsEnc, rec.WebhookEnc} {
			if id := secrets.SealedKeyID(v); id != "" && !known[id] {
				unknown = id
			}
		}
	}
	subs, err := st.ListSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("check secret key: %w", err)
	}
	for _, sub := range subs {
		if id := secrets.SealedKeyID(sub.SecretEnc); id != "" && !known[id] {
			unknown = id
		}
	}
	if unknown != "" {
		return fmt.Errorf("the database holds secrets encrypted under key %s, which this server does not have: set FORGEWAY_SECRET_KEY to that key (and the new one in FORGEWAY_SECRET_KEYS_OLD order if rotating)", unknown)
	}
	return nil
}

// bootstrapAdmin makes sure an admin token exists: FORGEWAY_ADMIN_TOKEN when given, else one
// generated on first start and printed once (only its hash is stored).
func (a *App) bootstrapAdmin(ctx context.Context) error {
	if a.Config.AdminToken != "" {
		hash := api.HashToken(a.Config.AdminToken)
		if _, err := a.Store.FindAPIToken(ctx, hash); err == nil {
			return nil
		}
		return a.Store.CreateAPIToken(ctx, &store.APIToken{Name: "admin (FORGEWAY_ADMIN_TOKEN)", Admin: true, Hash: hash})
	}
	first, err := a.Store.PutKVIfAbsent(ctx, "bootstrap/admin-token", []byte(time.Now().UTC().Format(time.RFC3339)))
	if err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	if !first {
		return nil
	}
	value := api.NewTokenValue()
	if err := a.Store.CreateAPIToken(ctx, &store.APIToken{Name: "admin (first start)", Admin: true, Hash: api.HashToken(value)}); err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	fmt.Fprintf(a.Out, "\nForgeway admin API token (shown once; store it now):\n\n    %s\n\nUse it as: export FORGEWAY_TOKEN=%s\n\n", value, value)
	return nil
}
