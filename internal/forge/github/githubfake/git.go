package githubfake

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/forgeway/forgeway/internal/gittest"
)

// GitServer is a fake GitHub whose repositories added with AddGitRepository hold real git
// data (served by git http-backend behind the fake's credential check); a push to one makes
// the fake deliver the push event GitHub would send, after the push is accepted, as GitHub does.
type GitServer struct {
	*Server
	// Root is the directory of the bare repositories.
	Root string
	wg   sync.WaitGroup
}

// NewGitServer starts a fake GitHub serving git; o.Git is set by it.
func NewGitServer(t testing.TB, o Options) *GitServer {
	t.Helper()
	g := &GitServer{Root: t.TempDir()}
	o.Git = gittest.Handler(g.Root, gittest.HandlerOptions{OnPush: func(repo string, updates []gittest.RefUpdate) {
		name := strings.TrimSuffix(strings.TrimPrefix(repo, "/"), ".git")
		for _, u := range updates {
			g.wg.Add(1)
			go func(u gittest.RefUpdate) {
				defer g.wg.Done()
				_, err := g.DeliverPush(context.Background(), name, Push{
					Ref: u.Ref, Before: u.Old, After: u.New,
					Commits: []Commit{{ID: u.New, Message: "pushed through git", AuthorName: "Octo", AuthorEmail: "octo@example.com"}},
				})
				if err != nil {
					t.Errorf("githubfake: deliver push: %v", err)
				}
			}(u)
		}
	}})
	g.Server = New(t, o)
	t.Cleanup(g.wg.Wait)
	return g
}

// AddGitRepository adds a repository whose main branch is a real commit in a bare repository.
func (g *GitServer) AddGitRepository(t testing.TB, fullName string) Repo {
	t.Helper()
	bare := gittest.InitBare(t, g.Root, fullName+".git")
	work := gittest.InitWork(t)
	sha := gittest.Commit(t, work, "README.md", "hello\n", "first commit")
	gittest.Git(t, work, "push", "--quiet", bare, "main")
	return g.AddRepository(Repo{FullName: fullName, Branches: map[string]string{"main": sha}})
}

// GitAuth is the header line git authenticates to the fake with, for a token.
func GitAuth(token string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
}
