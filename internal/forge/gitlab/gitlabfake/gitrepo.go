package gitlabfake

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/forgeway/forgeway/internal/gittest"
)

// gitEnv is an environment that ignores the machine's and the user's git configuration.
func gitEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "HOME=/nonexistent",
	}
}

// runGit runs git in the bare repository dir and returns its standard output.
func runGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(), "GIT_DIR="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// initGit prepares the root of the fake's git repositories and their handler, once.
func (s *Server) initGit() {
	s.gitOnce.Do(func() {
		s.gitRoot = s.t.TempDir()
		s.git = gittest.Handler(s.gitRoot, gittest.HandlerOptions{OnPush: s.onPush})
	})
}

func (s *Server) gitHandler() http.Handler { return s.git }

// AddGitProject creates a project backed by a real bare repository, served at
// <URL>/<full path>.git, whose default branch holds one commit; it returns the project's id.
// Pushes to it (with a token whose user is a Developer) send GitLab's push and tag push events
// to the project's hooks.
func (s *Server) AddGitProject(p Project) int64 {
	s.t.Helper()
	s.initGit()
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	dir := gittest.InitBare(s.t, s.gitRoot, p.FullPath+".git")
	work := gittest.InitWork(s.t)
	gittest.Commit(s.t, work, "README.md", "# "+p.FullPath+"\n", "Initial commit")
	gittest.Git(s.t, work, "push", "--quiet", dir, "HEAD:refs/heads/"+p.DefaultBranch)
	if _, err := runGit(dir, "symbolic-ref", "HEAD", "refs/heads/"+p.DefaultBranch); err != nil {
		s.t.Fatalf("gitlabfake: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Branches = map[string]string{}
	np := s.addProjectLocked(p)
	np.gitDir = dir
	return np.id
}

// gitRef is a branch and its head commit.
type gitRef struct {
	name, sha, subject, message, authorName, authorEmail, date string
}

// branchesLocked lists a project's branches by name.
func (s *Server) branchesLocked(p *project) ([]gitRef, error) {
	var out []gitRef
	if p.gitDir == "" {
		for name, sha := range p.branches {
			out = append(out, gitRef{name: name, sha: sha, date: ts(p.created)})
		}
	} else {
		raw, err := runGit(p.gitDir, "for-each-ref", "--format=%(refname:strip=2)%00%(objectname)%00%(subject)%00%(authorname)%00%(authoremail:trim)%00%(authordate:iso-strict)%00%(contents)%1e", "refs/heads")
		if err != nil {
			return nil, err
		}
		for _, rec := range strings.Split(raw, "\x1e") {
			f := strings.Split(strings.TrimPrefix(rec, "\n"), "\x00")
			if len(f) < 7 {
				continue
			}
			out = append(out, gitRef{name: f[0], sha: f[1], subject: f[2], authorName: f[3], authorEmail: f[4], date: f[5], message: f[6]})
		}
	}
	slices.SortFunc(out, func(a, b gitRef) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// resolveLocked resolves a branch name or a commit sha of the project.
func (s *Server) resolveLocked(p *project, refs []gitRef, ref string) (string, bool) {
	for _, b := range refs {
		if b.name == ref {
			return b.sha, true
		}
	}
	if p.gitDir == "" {
		return ref, p.shas[ref]
	}
	out, err := runGit(p.gitDir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(out), true
}

func (s *Server) setBranchLocked(p *project, name, sha string) error {
	if p.gitDir == "" {
		p.branches[name] = sha
		return nil
	}
	_, err := runGit(p.gitDir, "update-ref", "refs/heads/"+name, sha)
	return err
}

// gitCommit is one commit as push events list it.
type gitCommit struct {
	id, message, timestamp, authorName, authorEmail string
	added, modified, removed                        []string
}

// gitCommits reads the commits shas of the repository at dir, in the order given, with the
// files each added, modified and removed.
func gitCommits(dir string, shas []string) ([]gitCommit, error) {
	if len(shas) == 0 {
		return nil, nil
	}
	args := append([]string{"log", "--no-walk=unsorted", "--name-status", "--no-renames", "--format=%x1e%H%x00%aI%x00%an%x00%ae%x00%B%x00"}, shas...)
	raw, err := runGit(dir, args...)
	if err != nil {
		return nil, err
	}
	var out []gitCommit
	for _, rec := range strings.Split(raw, "\x1e")[1:] {
		f := strings.SplitN(rec, "\x00", 6)
		if len(f) < 6 {
			continue
		}
		c := gitCommit{id: f[0], timestamp: f[1], authorName: f[2], authorEmail: f[3], message: f[4],
			added: []string{}, modified: []string{}, removed: []string{}}
		for _, line := range strings.Split(f[5], "\n") {
			status, file, ok := strings.Cut(line, "\t")
			if !ok {
				continue
			}
			switch status {
			case "A":
				c.added = append(c.added, file)
			case "D":
				c.removed = append(c.removed, file)
			default:
				c.modified = append(c.modified, file)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// maxPushCommits is how many commits a push event lists; total_commits_count counts all.
const maxPushCommits = 20

// refUpdate is one ref a push (or the API) changed; a sha is empty where the ref did not
// exist.
type refUpdate struct {
	ref, oldSHA, newSHA string
}

// pushCommitsLocked lists the commits a ref update brought, oldest first, at most
// maxPushCommits (the newest), and counts them all: for a branch, those reachable from the
// new head and not from the old one (or, for a new branch, from no other branch); for a tag,
// the commit it points to.
func (s *Server) pushCommitsLocked(p *project, up refUpdate) ([]gitCommit, int, error) {
	if p.gitDir == "" || up.newSHA == "" {
		return nil, 0, nil
	}
	if strings.HasPrefix(up.ref, "refs/tags/") {
		sha, err := runGit(p.gitDir, "rev-parse", up.newSHA+"^{commit}")
		if err != nil {
			return nil, 0, err
		}
		cs, err := gitCommits(p.gitDir, []string{strings.TrimSpace(sha)})
		return cs, len(cs), err
	}
	rng := []string{up.newSHA}
	if up.oldSHA != "" {
		rng = append(rng, "^"+up.oldSHA)
	} else {
		rng = append(rng, "--not", "--exclude="+strings.TrimPrefix(up.ref, "refs/heads/"), "--branches")
	}
	raw, err := runGit(p.gitDir, append([]string{"rev-list"}, rng...)...)
	if err != nil {
		return nil, 0, err
	}
	shas := strings.Fields(raw) // newest first
	total := len(shas)
	shas = shas[:min(len(shas), maxPushCommits)]
	slices.Reverse(shas)
	cs, err := gitCommits(p.gitDir, shas)
	return cs, total, err
}

// pushEventHooksLimit is GitLab's push_event_hooks_limit: a push changing more refs sends no
// push or tag push hooks at all.
const pushEventHooksLimit = 3

// onPush is git's post-receive: it sends the push and tag push events of the refs a push
// changed, as the user who pushed.
func (s *Server) onPush(repo string, updates []gittest.RefUpdate) {
	full := strings.TrimSuffix(filepath.ToSlash(repo), ".git")
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.byPath[strings.ToLower(full)]
	if !ok || len(updates) > pushEventHooksLimit {
		return
	}
	u := s.pusher[p.id]
	for _, up := range updates {
		s.deliverRefChangeLocked(p, u, refUpdate{ref: up.Ref, oldSHA: up.Old, newSHA: up.New})
	}
}
