// Package catalog owns the repository catalog: discovery of every repository an
// integration's credential reaches (on a schedule, on demand, and from deliveries), the
// integration's filter, attaching and detaching repositories (hooks on the host, the local
// mirror), keeping mirrors in sync, and reconciling hooks someone changed behind our back.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/gitmirror"
	"github.com/forgeway/forgeway/internal/integrations"
	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/store"
)

// Job kinds the catalog runs.
const (
	JobDiscover  = "catalog.discover"
	JobAttach    = "repo.attach"
	JobDetach    = "repo.detach"
	JobSync      = "repo.sync"
	JobPush      = "repo.push"
	JobReconcile = "hooks.reconcile"
)

// Hook statuses of attached repositories.
const (
	HookPending   = "pending"
	HookOK        = "ok"
	HookError     = "error"
	HookRemoving  = "removing"
	HookRecreated = "recreated"
)

// Mirror statuses.
const (
	MirrorNone    = "none"
	MirrorCloning = "cloning"
	MirrorSyncing = "syncing"
	MirrorReady   = "ready"
	MirrorError   = "error"
)

// Errors for the API.
var (
	ErrFiltered    = errors.New("the repository does not match the integration's filter")
	ErrNotAttached = errors.New("the repository is not attached")
	ErrSuspended   = errors.New("the integration is suspended")
)

// Service is the catalog.
type Service struct {
	ints    *integrations.Service
	st      store.Store
	mirrors *gitmirror.Manager
	dataDir string
	log     *slog.Logger
	notify  func()
	now     func() time.Time
}

// Options configures the catalog.
type Options struct {
	Integrations *integrations.Service
	Mirrors      *gitmirror.Manager
	DataDir      string // CA bundles for git are written under it
	Logger       *slog.Logger
	// Notify wakes the job runner after jobs were inserted. Optional.
	Notify func()
	Now    func() time.Time
}

// New returns the catalog service.
func New(o Options) *Service {
	s := &Service{ints: o.Integrations, st: o.Integrations.Store(), mirrors: o.Mirrors, dataDir: o.DataDir, log: o.Logger, notify: o.Notify, now: o.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Register adds the catalog's job handlers to a runner.
func (s *Service) Register(r *jobs.Runner) {
	r.Register(JobDiscover, s.runDiscover, jobs.KindOptions{MaxAttempts: 10, Timeout: 30 * time.Minute})
	r.Register(JobAttach, s.runAttach, jobs.KindOptions{MaxAttempts: 10, Timeout: 2 * time.Minute})
	r.Register(JobDetach, s.runDetach, jobs.KindOptions{MaxAttempts: 10, Timeout: 2 * time.Minute})
	r.Register(JobSync, s.runSync, jobs.KindOptions{MaxAttempts: 8, Timeout: 30 * time.Minute})
	r.Register(JobPush, s.runPush, jobs.KindOptions{MaxAttempts: 5, Timeout: 30 * time.Minute})
	r.Register(JobReconcile, s.runReconcile, jobs.KindOptions{MaxAttempts: 3, Timeout: 10 * time.Minute})
	r.Register(JobRotate, s.runRotate, jobs.KindOptions{MaxAttempts: 10, Timeout: 10 * time.Minute})
}

// integrationArgs and repoArgs are job arguments.
type integrationArgs struct {
	IntegrationID string `json:"integration_id"`
}

type repoArgs struct {
	RepositoryID string   `json:"repository_id"`
	Refspecs     []string `json:"refspecs,omitempty"`
	User         string   `json:"user,omitempty"`
	// Forget removes the catalog entry once detached: the host no longer has the repository
	// (or no longer lets the integration see it).
	Forget bool `json:"forget,omitempty"`
}

// DiscoverJob is the job that refreshes an integration's catalog; concurrent requests coalesce.
func DiscoverJob(integrationID string) store.NewJob {
	return store.NewJob{Kind: JobDiscover, Args: integrationArgs{integrationID}, UniqueKey: "discover:" + integrationID, MaxAttempts: 10}
}

// ReconcileJob checks an integration's hooks.
func ReconcileJob(integrationID string) store.NewJob {
	return store.NewJob{Kind: JobReconcile, Args: integrationArgs{integrationID}, UniqueKey: "reconcile:" + integrationID, MaxAttempts: 3}
}

// SyncJob fetches a repository's mirror; one pending sync per repository.
func SyncJob(repoID string) store.NewJob {
	return store.NewJob{Kind: JobSync, Args: repoArgs{RepositoryID: repoID}, UniqueKey: "sync:" + repoID, MaxAttempts: 8}
}

// Refresh enqueues a discovery now.
func (s *Service) Refresh(ctx context.Context, integrationID string) (store.Job, error) {
	j, _, err := s.st.InsertJob(ctx, DiscoverJob(integrationID))
	if err != nil {
		return j, fmt.Errorf("enqueue discovery: %w", err)
	}
	s.notify()
	return j, nil
}

// Progress of a discovery, as reported on its job.
type Progress struct {
	Phase         string `json:"phase"`
	Installations int    `json:"installations,omitempty"`
	Repositories  int    `json:"repositories"`
	Pages         int    `json:"pages"`
	Matched       int    `json:"matched"`
	Removed       int    `json:"removed,omitempty"`
}

// jobIntegration loads the integration a job is about; ok is false when the job has nothing
// to do (the integration was deleted meanwhile: err is nil) or cannot run (err).
func (s *Service) jobIntegration(ctx context.Context, j *jobs.Job) (store.Integration, bool, error) {
	var a integrationArgs
	if err := j.Decode(&a); err != nil {
		return store.Integration{}, false, jobs.Permanent(err)
	}
	rec, err := s.st.GetIntegration(ctx, a.IntegrationID)
	if errors.Is(err, store.ErrNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	return rec, true, nil
}

func (s *Service) runDiscover(ctx context.Context, j *jobs.Job) error {
	rec, ok, err := s.jobIntegration(ctx, j)
	if !ok {
		return err
	}
	if rec.Status == store.StatusSuspended {
		return nil
	}
	res, err := s.Discover(ctx, rec, func(p Progress) { _ = j.Progress(ctx, p) })
	if err != nil {
		var rl *forge.RateLimitError
		if errors.As(err, &rl) {
			return jobs.RetryAt(rl.Reset, err)
		}
		if errors.Is(err, forge.ErrUnauthorized) || errors.Is(err, forge.ErrForbidden) {
			s.setStatus(ctx, rec.ID, store.StatusError, err.Error())
			return jobs.Permanent(err)
		}
		if errors.Is(err, forge.ErrUnsupported) {
			// Not ready to list (a GitHub App still to be created): say so; retrying cannot help.
			s.setStatus(ctx, rec.ID, rec.Status, err.Error())
			return jobs.Permanent(err)
		}
		return err
	}
	_ = j.Progress(ctx, res)
	return nil
}

// Discover lists every repository the integration reaches and brings the catalog in line:
// new ones added, renamed ones updated (identity is the host id), removed ones gone. The
// filter is applied here, before any per-repository call. Nothing is removed unless the whole
// listing succeeded.
func (s *Service) Discover(ctx context.Context, rec store.Integration, progress func(Progress)) (Progress, error) {
	p := Progress{Phase: "listing"}
	if progress == nil {
		progress = func(Progress) {}
	}
	client, err := s.ints.Client(ctx, rec)
	if err != nil {
		return p, err
	}
	filter, err := CompileFilter(rec.Filter)
	if err != nil {
		return p, jobs.Permanent(err)
	}
	start := s.now().UTC()
	if ic, ok := client.(forge.Installations); ok {
		insts, err := ic.Installations(ctx)
		switch {
		case errors.Is(err, forge.ErrUnsupported):
			// This credential is not installed anywhere (a token): nothing to record.
		case err != nil:
			return p, fmt.Errorf("list installations: %w", err)
		default:
			if err := s.syncInstallations(ctx, rec.ID, insts); err != nil {
				return p, err
			}
			p.Installations = len(insts)
		}
	}
	err = client.Repositories(ctx, func(page []forge.Repository) error {
		rows := make([]store.Repository, 0, len(page))
		for _, fr := range page {
			r := FromForge(rec.ID, fr)
			r.SeenAt = start
			r.Matched, _ = filter.Match(r)
			if r.Matched {
				p.Matched++
			}
			rows = append(rows, r)
		}
		if err := s.st.UpsertRepositories(ctx, rows); err != nil {
			return fmt.Errorf("store a page of repositories: %w", err)
		}
		p.Pages++
		p.Repositories += len(page)
		progress(p)
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("list repositories of %s: %w", rec.Name, err)
	}
	deleted, gone, err := s.st.DeleteRepositoriesNotSeen(ctx, rec.ID, "", start)
	if err != nil {
		return p, fmt.Errorf("remove repositories no longer on the host: %w", err)
	}
	for _, r := range gone {
		s.forget(ctx, r)
	}
	p.Removed = deleted + len(gone)
	p.Phase = "done"
	if rec.Status == store.StatusPending || rec.Status == store.StatusError || rec.Status == store.StatusInstalling {
		if p.Installations > 0 || rec.Status != store.StatusInstalling {
			s.setStatus(ctx, rec.ID, store.StatusActive, "")
		}
	}
	s.log.Info("discovery finished", "integration", rec.ID, "repositories", p.Repositories, "pages", p.Pages, "matched", p.Matched, "removed", p.Removed)
	return p, nil
}

func (s *Service) syncInstallations(ctx context.Context, integrationID string, insts []forge.Installation) error {
	return s.st.Tx(ctx, func(tx store.Tx) error {
		rec, err := tx.GetIntegration(ctx, integrationID)
		if err != nil {
			return err
		}
		existing, err := tx.ListInstallations(ctx, integrationID)
		if err != nil {
			return err
		}
		present := map[string]bool{}
		for _, in := range insts {
			present[in.ID] = true
			status := "active"
			if in.Suspended {
				status = "suspended"
			}
			if err := tx.UpsertInstallation(ctx, &store.Installation{IntegrationID: integrationID, ID: in.ID, Account: in.Account, AccountType: in.AccountType, RepositorySelection: in.RepositorySelection, Status: status}); err != nil {
				return err
			}
			AddRoute(&rec, forge.InstallationRoute(in.ID))
		}
		for _, ex := range existing {
			if !present[ex.ID] {
				if err := tx.DeleteInstallation(ctx, integrationID, ex.ID); err != nil {
					return err
				}
			}
		}
		return tx.UpdateIntegration(ctx, &rec)
	})
}

// AddRoute adds a route key to an integration, reporting whether it was new.
func AddRoute(rec *store.Integration, key string) bool {
	for _, k := range rec.RouteKeys {
		if k == key {
			return false
		}
	}
	rec.RouteKeys = append(rec.RouteKeys, key)
	return true
}

func (s *Service) setStatus(ctx context.Context, id, status, note string) {
	err := s.st.Tx(ctx, func(tx store.Tx) error {
		rec, err := tx.GetIntegration(ctx, id)
		if err != nil {
			return err
		}
		if rec.Status == status && rec.StatusNote == note {
			return nil
		}
		rec.Status, rec.StatusNote = status, note
		return tx.UpdateIntegration(ctx, &rec)
	})
	if err != nil {
		s.log.Warn("could not record integration status", "integration", id, "status", status, "err", err)
	}
}

// FromForge makes a catalog entry from a host's repository.
func FromForge(integrationID string, fr forge.Repository) store.Repository {
	return store.Repository{
		IntegrationID: integrationID, HostID: fr.HostID, FullName: fr.FullName, Name: fr.Name,
		Owner: fr.Owner, Group: fr.Group, DefaultBranch: fr.DefaultBranch, Visibility: fr.Visibility,
		Private: fr.Private, Archived: fr.Archived, Fork: fr.Fork, CloneURL: fr.CloneURL,
		WebURL: fr.WebURL, Permission: string(fr.Permission), Description: fr.Description,
		Installation: fr.Installation, Extra: fr.Extra,
	}
}

// ToForge gives a driver back the repository it listed.
func ToForge(r store.Repository) forge.Repository {
	return forge.Repository{
		HostID: r.HostID, FullName: r.FullName, Name: r.Name, Owner: r.Owner, Group: r.Group,
		DefaultBranch: r.DefaultBranch, Visibility: r.Visibility, Private: r.Private,
		Archived: r.Archived, Fork: r.Fork, CloneURL: r.CloneURL, WebURL: r.WebURL,
		Permission: forge.Permission(r.Permission), Description: r.Description,
		Installation: r.Installation, Extra: r.Extra,
	}
}

// Attach marks a repository attached and enqueues the work (hooks on the host, then the
// mirror). Attaching an attached repository re-checks its hooks and changes nothing else.
func (s *Service) Attach(ctx context.Context, repoID string) (store.Job, error) {
	var job store.Job
	err := s.st.Tx(ctx, func(tx store.Tx) error {
		r, err := tx.GetRepository(ctx, repoID)
		if err != nil {
			return err
		}
		rec, err := tx.GetIntegration(ctx, r.IntegrationID)
		if err != nil {
			return err
		}
		if rec.Status == store.StatusSuspended {
			return ErrSuspended
		}
		if !r.Matched {
			return ErrFiltered
		}
		if !r.Attached {
			r.Attached = true
			r.HookStatus = HookPending
			if r.Mirror.Status == "" {
				r.Mirror.Status = MirrorNone
			}
			if err := tx.UpdateRepositoryState(ctx, &r); err != nil {
				return err
			}
		}
		job, _, err = tx.InsertJob(ctx, store.NewJob{Kind: JobAttach, Args: repoArgs{RepositoryID: repoID}, UniqueKey: "attach:" + repoID, MaxAttempts: 10})
		return err
	})
	if err == nil {
		s.notify()
	}
	return job, err
}

// Detach enqueues removal of the repository's hooks and mirror. Detaching a repository whose
// hooks someone already deleted is not an error.
func (s *Service) Detach(ctx context.Context, repoID string) (store.Job, error) {
	var job store.Job
	err := s.st.Tx(ctx, func(tx store.Tx) error {
		r, err := tx.GetRepository(ctx, repoID)
		if err != nil {
			return err
		}
		if r.Attached {
			r.HookStatus = HookRemoving
			if err := tx.UpdateRepositoryState(ctx, &r); err != nil {
				return err
			}
		}
		job, _, err = tx.InsertJob(ctx, store.NewJob{Kind: JobDetach, Args: repoArgs{RepositoryID: repoID}, UniqueKey: "detach:" + repoID, MaxAttempts: 10})
		return err
	})
	if err == nil {
		s.notify()
	}
	return job, err
}

// Sync enqueues a mirror fetch (coalesced with a pending one).
func (s *Service) Sync(ctx context.Context, repoID string) (store.Job, error) {
	return s.enqueueAttached(ctx, repoID, SyncJob(repoID))
}

// enqueueAttached inserts a job about an attached repository.
func (s *Service) enqueueAttached(ctx context.Context, repoID string, job store.NewJob) (store.Job, error) {
	r, err := s.st.GetRepository(ctx, repoID)
	if err != nil {
		return store.Job{}, err
	}
	if !r.Attached {
		return store.Job{}, ErrNotAttached
	}
	j, _, err := s.st.InsertJob(ctx, job)
	if err == nil {
		s.notify()
	}
	return j, err
}

// Push enqueues sending refs from the mirror back to the host, as user when set.
func (s *Service) Push(ctx context.Context, repoID string, refspecs []string, user string) (store.Job, error) {
	return s.enqueueAttached(ctx, repoID, store.NewJob{Kind: JobPush, Args: repoArgs{RepositoryID: repoID, Refspecs: refspecs, User: user}, MaxAttempts: 5})
}

func (s *Service) loadRepo(ctx context.Context, j *jobs.Job) (repoArgs, store.Repository, store.Integration, error) {
	var a repoArgs
	if err := j.Decode(&a); err != nil {
		return a, store.Repository{}, store.Integration{}, jobs.Permanent(err)
	}
	r, err := s.st.GetRepository(ctx, a.RepositoryID)
	if err != nil {
		return a, r, store.Integration{}, err
	}
	rec, err := s.st.GetIntegration(ctx, r.IntegrationID)
	return a, r, rec, err
}

func (s *Service) runAttach(ctx context.Context, j *jobs.Job) error {
	_, r, rec, err := s.loadRepo(ctx, j)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !r.Attached {
		return nil // detached before the job ran
	}
	if err := s.refreshDetails(ctx, rec, &r); err != nil {
		return hostRetry(err)
	}
	if err := s.ensureHooks(ctx, rec, &r); err != nil {
		return hostRetry(err)
	}
	if _, _, err := s.st.InsertJob(ctx, SyncJob(r.ID)); err != nil {
		return fmt.Errorf("enqueue first sync: %w", err)
	}
	s.notify()
	return nil
}

// refreshDetails reads an attached repository from the host: listings of some hosts leave
// out details (Bitbucket's carry no default branch), and one call per attached repository,
// after the filter, is cheap.
func (s *Service) refreshDetails(ctx context.Context, rec store.Integration, r *store.Repository) error {
	client, err := s.ints.Client(ctx, rec)
	if err != nil {
		return err
	}
	fr, err := client.Repository(ctx, r.HostID, ToForge(*r))
	if errors.Is(err, forge.ErrNotFound) {
		return jobs.Permanent(fmt.Errorf("%s is no longer on the host: %w", r.FullName, err))
	}
	if err != nil {
		return fmt.Errorf("read %s from the host: %w", r.FullName, err)
	}
	fresh := FromForge(rec.ID, fr)
	fresh.Matched, fresh.Installation = r.Matched, orKeep(fresh.Installation, r.Installation)
	if err := s.st.UpsertRepository(ctx, &fresh); err != nil {
		return err
	}
	*r = fresh
	return nil
}

// hookSpec is what the integration wants on the host for each attached repository.
func (s *Service) hookSpec(rec store.Integration, secret string) forge.HookSpec {
	return forge.HookSpec{URL: s.ints.WebhookURL(rec), Secret: secret, InsecureSkipTLS: rec.Settings[integrations.SettingInsecureSkipTLS] == "true"}
}

func (s *Service) ensureHooks(ctx context.Context, rec store.Integration, r *store.Repository) error {
	client, err := s.ints.Client(ctx, rec)
	if err != nil {
		return err
	}
	_, hookSecrets, err := s.ints.Open(rec)
	if err != nil {
		return err
	}
	var secret string
	if len(hookSecrets) > 0 {
		secret = hookSecrets[0]
	}
	spec := s.hookSpec(rec, secret)
	hooks, err := client.EnsureHooks(ctx, ToForge(*r), spec)
	if err != nil {
		r.HookStatus, r.HookError = HookError, err.Error()
		_ = s.st.UpdateRepositoryState(ctx, r)
		return fmt.Errorf("create hooks on %s: %w", r.FullName, err)
	}
	raw, _ := json.Marshal(hooks)
	cur, err := s.st.GetRepository(ctx, r.ID)
	if err != nil {
		return err
	}
	if !cur.Attached {
		// Detached while we were creating: undo, so nothing is left on the host.
		return client.RemoveHooks(ctx, ToForge(cur), spec.URL)
	}
	cur.Hooks, cur.HookStatus, cur.HookError = raw, HookOK, ""
	*r = cur
	return s.st.UpdateRepositoryState(ctx, r)
}

func (s *Service) runDetach(ctx context.Context, j *jobs.Job) error {
	a, r, rec, err := s.loadRepo(ctx, j)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	client, err := s.ints.Client(ctx, rec)
	if err != nil {
		return err
	}
	if err := client.RemoveHooks(ctx, ToForge(r), s.ints.WebhookURL(rec)); err != nil && !errors.Is(err, forge.ErrNotFound) {
		return hostRetry(fmt.Errorf("remove hooks from %s: %w", r.FullName, err))
	}
	if err := s.mirrors.Remove(r.ID); err != nil {
		return fmt.Errorf("remove mirror of %s: %w", r.FullName, err)
	}
	if a.Forget {
		if err := s.st.DeleteRepository(ctx, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("remove %s from the catalog: %w", r.FullName, err)
		}
		return nil
	}
	r.Attached, r.Hooks, r.HookStatus, r.HookError = false, nil, "", ""
	r.Mirror = store.MirrorState{Status: MirrorNone}
	return s.st.UpdateRepositoryState(ctx, &r)
}

// forget drops a repository the host no longer has: its mirror and its entry.
func (s *Service) forget(ctx context.Context, r store.Repository) {
	if err := s.mirrors.Remove(r.ID); err != nil {
		s.log.Warn("could not remove mirror", "repository", r.FullName, "err", err)
	}
	if err := s.st.DeleteRepository(ctx, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("could not remove repository", "repository", r.FullName, "err", err)
	}
}

// gitAccess is how git reaches a repository: a credential minted for each git run (as the
// person when as is set) and the integration's TLS settings.
func (s *Service) gitAccess(ctx context.Context, rec store.Integration, r store.Repository, as *forge.UserCredential, progress func(gitmirror.Progress)) (gitmirror.AuthFunc, gitmirror.SyncOptions, error) {
	client, err := s.ints.Client(ctx, rec)
	if err != nil {
		return nil, gitmirror.SyncOptions{}, err
	}
	fr := ToForge(r)
	auth := func(ctx context.Context, minValidity time.Duration) (forge.GitAuth, error) {
		return client.GitAuth(ctx, fr, as, minValidity)
	}
	o, err := s.gitOptions(rec, progress)
	return auth, o, err
}

// gitOptions are the TLS settings git uses for an integration.
func (s *Service) gitOptions(rec store.Integration, progress func(gitmirror.Progress)) (gitmirror.SyncOptions, error) {
	o := gitmirror.SyncOptions{Progress: progress, InsecureSkipTLS: rec.Settings[integrations.SettingInsecureSkipTLS] == "true"}
	if pem := rec.Settings[integrations.SettingCABundle]; pem != "" {
		dir := filepath.Join(s.dataDir, "ca")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return o, fmt.Errorf("write CA bundle: %w", err)
		}
		p := filepath.Join(dir, rec.ID+".pem")
		if err := os.WriteFile(p, []byte(pem), 0o600); err != nil {
			return o, fmt.Errorf("write CA bundle: %w", err)
		}
		o.CABundle = p
	}
	return o, nil
}

func (s *Service) runSync(ctx context.Context, j *jobs.Job) error {
	_, r, rec, err := s.loadRepo(ctx, j)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !r.Attached {
		return nil
	}
	auth, o, err := s.gitAccess(ctx, rec, r, nil, func(p gitmirror.Progress) { _ = j.Progress(ctx, p) })
	if err != nil {
		return err
	}
	if r.Mirror.Status != MirrorReady {
		r.Mirror.Status = MirrorCloning
		if s.mirrors.Exists(r.ID) {
			r.Mirror.Status = MirrorSyncing
		}
		_ = s.st.UpdateRepositoryState(ctx, &r)
	}
	res, err := s.mirrors.Sync(ctx, r.ID, r.CloneURL, auth, o)
	cur, gerr := s.st.GetRepository(ctx, r.ID)
	if gerr != nil {
		return gerr
	}
	if err != nil {
		cur.Mirror.Status, cur.Mirror.Error = MirrorError, err.Error()
		_ = s.st.UpdateRepositoryState(ctx, &cur)
		if errors.Is(err, forge.ErrNotFound) {
			return jobs.Permanent(err)
		}
		return hostRetry(fmt.Errorf("sync mirror of %s: %w", r.FullName, err))
	}
	cur.Mirror.Status, cur.Mirror.Error = MirrorReady, ""
	cur.Mirror.SyncedAt = s.now().UTC()
	cur.Mirror.SyncCount++
	if cur.DefaultBranch != "" {
		if head, err := s.mirrors.Head(ctx, r.ID, "refs/heads/"+cur.DefaultBranch); err == nil {
			cur.Mirror.Head = head
		}
	}
	_ = j.Progress(ctx, map[string]any{"cloned": res.Cloned, "updated": len(res.Updated), "duration_ms": res.Duration.Milliseconds()})
	return s.st.UpdateRepositoryState(ctx, &cur)
}

func (s *Service) runPush(ctx context.Context, j *jobs.Job) error {
	a, r, rec, err := s.loadRepo(ctx, j)
	if err != nil {
		return err
	}
	var as *forge.UserCredential
	if a.User != "" {
		if as, err = s.ints.UserCredential(ctx, rec, a.User); err != nil {
			return jobs.Permanent(fmt.Errorf("credential of %s: %w", a.User, err))
		}
	}
	auth, o, err := s.gitAccess(ctx, rec, r, as, nil)
	if err != nil {
		return err
	}
	if err := s.mirrors.Push(ctx, r.ID, r.CloneURL, a.Refspecs, auth, o); err != nil {
		if errors.Is(err, forge.ErrUnauthorized) || errors.Is(err, forge.ErrForbidden) {
			return jobs.Permanent(err)
		}
		return fmt.Errorf("push %v to %s: %w", a.Refspecs, r.FullName, err)
	}
	return nil
}

// runReconcile re-creates hooks that were deleted or disabled on the host.
func (s *Service) runReconcile(ctx context.Context, j *jobs.Job) error {
	rec, ok, err := s.jobIntegration(ctx, j)
	if !ok {
		return err
	}
	if rec.Status == store.StatusSuspended {
		return nil
	}
	n, err := s.Reconcile(ctx, rec)
	_ = j.Progress(ctx, map[string]int{"repaired": n})
	return hostRetry(err)
}

// Reconcile checks the hooks of every attached repository of an integration and repairs the
// missing or unhealthy ones. It returns how many it repaired.
func (s *Service) Reconcile(ctx context.Context, rec store.Integration) (int, error) {
	client, err := s.ints.Client(ctx, rec)
	if err != nil {
		return 0, err
	}
	url := s.ints.WebhookURL(rec)
	attached := true
	repaired := 0
	f := store.RepositoryFilter{IntegrationID: rec.ID, Attached: &attached, Page: store.Page{Limit: 500}}
	for {
		items, next, err := s.st.ListRepositories(ctx, f)
		if err != nil {
			return repaired, err
		}
		for _, r := range items {
			hooks, err := client.Hooks(ctx, ToForge(r), url)
			if errors.Is(err, forge.ErrNotFound) {
				continue // the repository itself is gone; discovery will remove it
			}
			if err != nil {
				return repaired, fmt.Errorf("list hooks of %s: %w", r.FullName, err)
			}
			if healthy(hooks) {
				continue
			}
			if err := s.ensureHooks(ctx, rec, &r); err != nil {
				return repaired, err
			}
			r.HookStatus = HookRecreated
			if err := s.st.UpdateRepositoryState(ctx, &r); err != nil {
				return repaired, err
			}
			repaired++
			s.log.Info("repaired hooks", "repository", r.FullName)
		}
		if next == "" {
			return repaired, nil
		}
		f.After = next
	}
}

func healthy(hooks []forge.Hook) bool {
	if len(hooks) == 0 {
		return false
	}
	for _, h := range hooks {
		if !h.Active || !h.Healthy {
			return false
		}
	}
	return true
}

// hostRetry turns a host's rate-limit error into a retry at its reset.
func hostRetry(err error) error {
	if err == nil {
		return nil
	}
	var rl *forge.RateLimitError
	if errors.As(err, &rl) {
		return jobs.RetryAt(rl.Reset, err)
	}
	return err
}
