// Package gitmirror keeps bare mirrors of host repositories on local disk with the git CLI:
// clone, fetch, push and read refs, one operation per mirror at a time across processes.
//
// It owns the mirror directory layout (root/<key>.git, root/<key>.lock) and the way
// credentials reach git: only through the environment of the one git process that needs
// them (GIT_CONFIG_COUNT with http.extraHeader), never in a URL, an argument, a config file or
// a log line.
package gitmirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// DefaultTimeout bounds one git operation when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Minute

// authMargin is added to the operation timeout when asking for a credential, so that a token
// minted just before a git run outlives it.
const authMargin = 2 * time.Minute

// Options configure a Manager.
type Options struct {
	// GitPath is the git executable; empty means "git" from PATH.
	GitPath string
	// Timeout bounds one git operation (and, separately, the wait for a mirror's lock);
	// zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives one line per network operation; nil discards.
	Logger *slog.Logger
}

// AuthFunc returns the credential for one git process, valid for at least minValidity. It is
// called right before each git process that talks to the host. A nil AuthFunc means the
// repository is public.
type AuthFunc func(ctx context.Context, minValidity time.Duration) (forge.GitAuth, error)

// SyncOptions tune one network operation.
type SyncOptions struct {
	// Progress, when set, is called with every progress line git reports, synchronously
	// from the goroutine reading git's output: keep it fast.
	Progress func(Progress)
	// CABundle is the path of a PEM file of CAs git trusts for the host (http.sslCAInfo).
	CABundle string
	// InsecureSkipTLS switches TLS verification off (http.sslVerify=false). Only when asked.
	InsecureSkipTLS bool
}

// RefChange is one ref a sync changed. Old is forge.ZeroSHA for a created ref, New is
// forge.ZeroSHA for a deleted one.
type RefChange struct {
	Ref string
	Old string
	New string
}

// SyncResult says what a Sync did.
type SyncResult struct {
	// Cloned is true when the mirror did not exist and was cloned.
	Cloned bool
	// Updated lists the refs that changed, sorted by name; after a clone, every ref.
	Updated []RefChange
	// Duration is how long the git work took, lock wait excluded.
	Duration time.Duration
}

// Manager keeps the mirrors under one root directory. It is safe for concurrent use, and
// several Managers (in several processes) may share a root.
type Manager struct {
	root    string
	git     string
	timeout time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	locks map[string]*keyLock
}

// New returns a Manager for the mirrors under root. The directory is created on first use.
func New(root string, o Options) *Manager {
	if o.GitPath == "" {
		o.GitPath = "git"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		root:    root,
		git:     o.GitPath,
		timeout: o.Timeout,
		log:     o.Logger,
		locks:   map[string]*keyLock{},
	}
}

var (
	// ErrNoMirror: the mirror for a key does not exist (never synced, or removed).
	ErrNoMirror = errors.New("mirror does not exist")
	// ErrNoRef: the ref does not exist in the mirror.
	ErrNoRef = errors.New("ref not found in the mirror")
	// ErrInvalid: an argument (key, URL, ref, refspec, credential header) was refused before
	// git ran.
	ErrInvalid = errors.New("invalid argument")
)

var keyRE = regexp.MustCompile(`^[a-z0-9_-]{1,128}$`)

func checkKey(key string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("mirror key %q must match [a-z0-9_-]+: %w", key, ErrInvalid)
	}
	return nil
}

// checkRemote accepts http(s) URLs without credentials: a token in a URL would end up in the
// mirror's config file.
func checkRemote(remote string) (*url.URL, error) {
	u, err := url.Parse(remote)
	if err != nil {
		// url.Parse errors quote the input, which may hold a credential.
		return nil, fmt.Errorf("remote URL does not parse: %w", ErrInvalid)
	}
	if u.User != nil {
		return nil, fmt.Errorf("remote URL must not carry credentials (pass them through the AuthFunc): %w", ErrInvalid)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("remote URL must be http(s)://host/...: %w", ErrInvalid)
	}
	if strings.ContainsAny(remote, "\r\n\x00") {
		return nil, fmt.Errorf("remote URL holds control characters: %w", ErrInvalid)
	}
	return u, nil
}

// Dir is the mirror's directory for key (which may not exist yet), for readers such as an
// indexer that run their own git commands on it.
func (m *Manager) Dir(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return m.dir(key), nil
}

func (m *Manager) dir(key string) string      { return filepath.Join(m.root, key+".git") }
func (m *Manager) lockPath(key string) string { return filepath.Join(m.root, key+".lock") }
func (m *Manager) home() string               { return filepath.Join(m.root, ".home") }

// Temporary names use '.' around the key, a character keys cannot hold, so that one key's
// pattern never matches another's ("a" and "a-b").
func cloneTempPattern(key string) string { return ".clone." + key + ".*" }
func trashPattern(key string) string     { return ".trash." + key + ".*" }

// Exists reports whether the mirror for key exists.
func (m *Manager) Exists(key string) bool {
	if checkKey(key) != nil {
		return false
	}
	fi, err := os.Stat(m.dir(key))
	return err == nil && fi.IsDir()
}

// Sync brings the mirror for key up to date with remoteURL: it clones it when it does not
// exist (a failed clone leaves nothing behind) and fetches with prune otherwise, then reports
// the refs that changed. When remoteURL differs from the mirror's origin (a renamed
// repository), origin is repointed first.
func (m *Manager) Sync(ctx context.Context, key, remoteURL string, auth AuthFunc, o SyncOptions) (SyncResult, error) {
	if err := checkKey(key); err != nil {
		return SyncResult{}, err
	}
	u, err := checkRemote(remoteURL)
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync mirror %s: %w", key, err)
	}
	release, err := m.acquire(ctx, key)
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync mirror %s: %w", key, err)
	}
	defer release()

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	res, err := m.sync(ctx, key, remoteURL, auth, o)
	res.Duration = time.Since(start)
	if err != nil {
		m.log.WarnContext(ctx, "mirror sync failed", "key", key, "host", u.Host, "duration", res.Duration, "error", err)
		return res, err
	}
	m.log.InfoContext(ctx, "mirror synced", "key", key, "host", u.Host, "cloned", res.Cloned,
		"updated", len(res.Updated), "duration", res.Duration)
	return res, nil
}

func (m *Manager) sync(ctx context.Context, key, remoteURL string, auth AuthFunc, o SyncOptions) (SyncResult, error) {
	dir := m.dir(key)
	if !m.Exists(key) {
		if err := m.clone(ctx, key, remoteURL, auth, o); err != nil {
			return SyncResult{}, err
		}
		after, err := m.refMap(ctx, dir)
		if err != nil {
			return SyncResult{Cloned: true}, fmt.Errorf("read refs of new mirror %s: %w", key, err)
		}
		return SyncResult{Cloned: true, Updated: diffRefs(nil, after)}, nil
	}

	before, err := m.refMap(ctx, dir)
	if err != nil {
		return SyncResult{}, fmt.Errorf("read refs of mirror %s: %w", key, err)
	}
	if err := m.pointOrigin(ctx, dir, remoteURL); err != nil {
		return SyncResult{}, fmt.Errorf("sync mirror %s: %w", key, err)
	}
	op := "fetch mirror " + key
	err = m.withAuth(ctx, op, auth, func(ga forge.GitAuth) error {
		_, err := m.run(ctx, runSpec{
			op: op, gitDir: dir, auth: ga, sync: o,
			args: []string{"fetch", "--prune", "--progress", "--no-write-fetch-head", "--end-of-options", "origin"},
		})
		return err
	})
	if err != nil {
		return SyncResult{}, err
	}
	after, err := m.refMap(ctx, dir)
	if err != nil {
		return SyncResult{}, fmt.Errorf("read refs of mirror %s after fetch: %w", key, err)
	}
	return SyncResult{Updated: diffRefs(before, after)}, nil
}

// clone clones into a temporary directory beside the mirror and renames it into place, so
// that readers never see a half-cloned mirror and a failed clone leaves nothing.
func (m *Manager) clone(ctx context.Context, key, remoteURL string, auth AuthFunc, o SyncOptions) error {
	m.removeLeftovers(key)
	op := "clone mirror " + key
	return m.withAuth(ctx, op, auth, func(ga forge.GitAuth) error {
		tmp, err := os.MkdirTemp(m.root, cloneTempPattern(key))
		if err != nil {
			return fmt.Errorf("%s: create temporary directory: %w", op, err)
		}
		_, err = m.run(ctx, runSpec{
			op: op, auth: ga, sync: o,
			args: []string{"clone", "--mirror", "--progress", "--end-of-options", remoteURL, tmp},
		})
		if err == nil {
			err = os.Rename(tmp, m.dir(key))
			if err != nil {
				err = fmt.Errorf("%s: move into place: %w", op, err)
			}
		}
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
		return err
	})
}

// removeLeftovers deletes the temporary directories of clones and removals a crashed process
// left. The caller holds the key's lock, so no live operation owns them.
func (m *Manager) removeLeftovers(key string) {
	for _, pattern := range []string{cloneTempPattern(key), trashPattern(key)} {
		leftovers, _ := filepath.Glob(filepath.Join(m.root, pattern))
		for _, d := range leftovers {
			_ = os.RemoveAll(d)
		}
	}
}

func (m *Manager) pointOrigin(ctx context.Context, dir, remoteURL string) error {
	cur, err := m.run(ctx, runSpec{op: "read origin", gitDir: dir, args: []string{"config", "--get", "remote.origin.url"}})
	if err != nil {
		return err
	}
	if strings.TrimSpace(cur) == remoteURL {
		return nil
	}
	_, err = m.run(ctx, runSpec{op: "repoint origin", gitDir: dir, args: []string{"config", "remote.origin.url", remoteURL}})
	return err
}

// withAuth runs fn with a fresh credential. When fn fails with an authentication error and
// the credential had already expired (a long lock wait, a clock skew), it mints a new one and
// retries once.
func (m *Manager) withAuth(ctx context.Context, op string, auth AuthFunc, fn func(forge.GitAuth) error) error {
	for attempt := 0; ; attempt++ {
		var ga forge.GitAuth
		if auth != nil {
			var err error
			ga, err = auth(ctx, m.timeout+authMargin)
			if err != nil {
				return fmt.Errorf("%s: get git credential: %w", op, err)
			}
			if err := checkHeader(ga.Header); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		err := fn(ga)
		if err == nil {
			return nil
		}
		expired := !ga.Expires.IsZero() && !time.Now().Before(ga.Expires)
		if attempt == 0 && auth != nil && expired && errors.Is(err, forge.ErrUnauthorized) {
			m.log.InfoContext(ctx, "git credential expired during the run; minting a new one", "op", op)
			continue
		}
		return err
	}
}

// checkHeader accepts one "Name: value" header line; a line break would let a header smuggle
// more configuration.
func checkHeader(h string) error {
	name, value, ok := strings.Cut(h, ":")
	if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(value) == "" || strings.ContainsAny(h, "\r\n\x00") {
		return fmt.Errorf("git credential header is not a single \"Name: value\" line: %w", ErrInvalid)
	}
	return nil
}

// Push pushes refspecs from the mirror for key to remoteURL.
func (m *Manager) Push(ctx context.Context, key, remoteURL string, refspecs []string, auth AuthFunc, o SyncOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	u, err := checkRemote(remoteURL)
	if err != nil {
		return fmt.Errorf("push from mirror %s: %w", key, err)
	}
	if len(refspecs) == 0 {
		return fmt.Errorf("push from mirror %s: no refspec: %w", key, ErrInvalid)
	}
	for _, r := range refspecs {
		if err := checkRefspec(r); err != nil {
			return fmt.Errorf("push from mirror %s: %w", key, err)
		}
	}
	release, err := m.acquire(ctx, key)
	if err != nil {
		return fmt.Errorf("push from mirror %s: %w", key, err)
	}
	defer release()
	if !m.Exists(key) {
		return fmt.Errorf("push from mirror %s: %w", key, ErrNoMirror)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	op := "push from mirror " + key
	args := append([]string{"push", "--progress", "--end-of-options", remoteURL}, refspecs...)
	err = m.withAuth(ctx, op, auth, func(ga forge.GitAuth) error {
		_, err := m.run(ctx, runSpec{op: op, gitDir: m.dir(key), auth: ga, sync: o, args: args})
		return err
	})
	if err != nil {
		m.log.WarnContext(ctx, "mirror push failed", "key", key, "host", u.Host, "error", err)
		return err
	}
	m.log.InfoContext(ctx, "mirror pushed", "key", key, "host", u.Host, "refspecs", len(refspecs), "duration", time.Since(start))
	return nil
}

func checkRefspec(r string) error {
	if r == "" || strings.HasPrefix(r, "-") || strings.ContainsAny(r, " \t\r\n\x00\\~^?[") {
		return fmt.Errorf("refspec %q is not acceptable: %w", r, ErrInvalid)
	}
	return nil
}

func checkRef(r string) error {
	if r == "" || strings.HasPrefix(r, "-") || strings.Contains(r, "..") ||
		strings.ContainsAny(r, " \t\r\n\x00\\~^:?*[@{") {
		return fmt.Errorf("ref %q is not acceptable: %w", r, ErrInvalid)
	}
	return nil
}

var shaRE = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// readCtx bounds a read-only git command. Reads take no lock: git updates refs atomically,
// so a reader sees the mirror before or after a concurrent fetch, and must not wait for it.
func (m *Manager) readCtx(ctx context.Context, key string) (context.Context, context.CancelFunc, error) {
	if err := checkKey(key); err != nil {
		return nil, nil, err
	}
	if !m.Exists(key) {
		return nil, nil, ErrNoMirror
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	return ctx, cancel, nil
}

// Head returns the commit ref points to in the mirror ("main", "refs/heads/main", a tag,
// which is peeled to its commit). It fails with ErrNoRef when the ref does not exist.
func (m *Manager) Head(ctx context.Context, key, ref string) (string, error) {
	if err := checkRef(ref); err != nil {
		return "", fmt.Errorf("resolve %s in mirror %s: %w", ref, key, err)
	}
	ctx, cancel, err := m.readCtx(ctx, key)
	if err != nil {
		return "", fmt.Errorf("resolve %s in mirror %s: %w", ref, key, err)
	}
	defer cancel()
	sha, ok, err := m.verify(ctx, key, ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("resolve %s in mirror %s: %w", ref, key, err)
	}
	if !ok {
		return "", fmt.Errorf("resolve %s in mirror %s: %w", ref, key, ErrNoRef)
	}
	return sha, nil
}

// HasCommit reports whether the commit sha (a full object id) is in the mirror.
func (m *Manager) HasCommit(ctx context.Context, key, sha string) (bool, error) {
	if !shaRE.MatchString(sha) {
		return false, fmt.Errorf("look up commit in mirror %s: %q is not a full object id: %w", key, sha, ErrInvalid)
	}
	ctx, cancel, err := m.readCtx(ctx, key)
	if err != nil {
		return false, fmt.Errorf("look up commit %s in mirror %s: %w", sha, key, err)
	}
	defer cancel()
	_, ok, err := m.verify(ctx, key, sha+"^{commit}")
	if err != nil {
		return false, fmt.Errorf("look up commit %s in mirror %s: %w", sha, key, err)
	}
	return ok, nil
}

// verify resolves rev with rev-parse --verify; ok is false when it does not resolve.
func (m *Manager) verify(ctx context.Context, key, rev string) (sha string, ok bool, err error) {
	out, err := m.run(ctx, runSpec{
		op: "rev-parse", gitDir: m.dir(key),
		args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", rev},
	})
	if err != nil {
		// --quiet: exit status 1 with nothing on stderr means "does not resolve".
		var ge *Error
		if errors.As(err, &ge) && ge.exitCode == 1 {
			return "", false, nil
		}
		return "", false, err
	}
	return strings.TrimSpace(out), true, nil
}

// Refs lists every ref of the mirror with the object it points to (annotated tags are not
// peeled), sorted by name.
func (m *Manager) Refs(ctx context.Context, key string) ([]forge.Ref, error) {
	ctx, cancel, err := m.readCtx(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("list refs of mirror %s: %w", key, err)
	}
	defer cancel()
	refs, err := m.refMap(ctx, m.dir(key))
	if err != nil {
		return nil, fmt.Errorf("list refs of mirror %s: %w", key, err)
	}
	out := make([]forge.Ref, 0, len(refs))
	for name, sha := range refs {
		out = append(out, forge.Ref{Name: name, SHA: sha})
	}
	slices.SortFunc(out, func(a, b forge.Ref) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *Manager) refMap(ctx context.Context, dir string) (map[string]string, error) {
	out, err := m.run(ctx, runSpec{
		op: "for-each-ref", gitDir: dir,
		args: []string{"for-each-ref", "--format=%(objectname) %(refname)"},
	})
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if sha, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			refs[name] = sha
		}
	}
	return refs, nil
}

func diffRefs(before, after map[string]string) []RefChange {
	var out []RefChange
	for name, sha := range after {
		old, ok := before[name]
		if !ok {
			out = append(out, RefChange{Ref: name, Old: forge.ZeroSHA, New: sha})
		} else if old != sha {
			out = append(out, RefChange{Ref: name, Old: old, New: sha})
		}
	}
	for name, sha := range before {
		if _, ok := after[name]; !ok {
			out = append(out, RefChange{Ref: name, Old: sha, New: forge.ZeroSHA})
		}
	}
	slices.SortFunc(out, func(a, b RefChange) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}

// Remove deletes the mirror for key, waiting (up to the operation timeout) for a running
// operation on it to end. Removing a mirror that does not exist is not an error. The lock
// file stays: deleting it would let two processes lock different files.
func (m *Manager) Remove(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	release, err := m.acquire(context.Background(), key)
	if err != nil {
		return fmt.Errorf("remove mirror %s: %w", key, err)
	}
	defer release()
	m.removeLeftovers(key)
	// Rename first so that a crash half-way never leaves a half-deleted mirror that looks
	// usable.
	trash, err := os.MkdirTemp(m.root, trashPattern(key))
	if err != nil {
		return fmt.Errorf("remove mirror %s: %w", key, err)
	}
	defer os.RemoveAll(trash)
	if err := os.Rename(m.dir(key), filepath.Join(trash, "mirror")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove mirror %s: %w", key, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove mirror %s: %w", key, err)
	}
	return nil
}
