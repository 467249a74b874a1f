package bitbucketdc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/forgeway/forgeway/internal/forge"
)

// bbLink is one entry of a links object.
type bbLink struct {
	Href string `json:"href"`
	Name string `json:"name"`
}

type bbProject struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Type string `json:"type"` // NORMAL or PERSONAL
}

// bbRepo is Bitbucket's repository representation (RestRepository).
type bbRepo struct {
	ID          int64     `json:"id"`
	Slug        string    `json:"slug"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Public      bool      `json:"public"`
	Archived    bool      `json:"archived"`
	State       string    `json:"state"`
	Project     bbProject `json:"project"`
	Origin      *struct {
		ID int64 `json:"id"`
	} `json:"origin"`
	Links struct {
		Clone []bbLink `json:"clone"`
		Self  []bbLink `json:"self"`
	} `json:"links"`
}

// toForge maps a repository. The full name is PROJECTKEY/slug and the group the project key.
// Bitbucket's listings do not carry the default branch (Repository fetches it), nor what the
// credential may do beyond reading (the listing asks for REPO_READ).
func (r bbRepo) toForge() forge.Repository {
	out := forge.Repository{
		HostID:      strconv.FormatInt(r.ID, 10),
		FullName:    r.Project.Key + "/" + r.Slug,
		Name:        r.Slug,
		Owner:       r.Project.Key,
		Group:       r.Project.Key,
		Visibility:  "private",
		Private:     !r.Public,
		Archived:    r.Archived,
		Fork:        r.Origin != nil,
		Permission:  forge.PermissionRead,
		Description: r.Description,
	}
	if r.Public {
		out.Visibility = "public"
	}
	for _, l := range r.Links.Clone {
		if strings.EqualFold(l.Name, "http") || strings.EqualFold(l.Name, "https") {
			out.CloneURL = l.Href
			break
		}
	}
	for _, l := range r.Links.Self {
		if l.Href != "" {
			out.WebURL = l.Href
			break
		}
	}
	return out
}

// Paging of the repository listing.
const (
	// repoPageLimit is the page size asked for; Bitbucket may answer with fewer (its
	// page.max.repositories setting), which the listing then follows.
	repoPageLimit = 100
	// listConcurrency bounds the pages of one listing fetched at once.
	listConcurrency = 4
)

// listPath lists the repositories the credential may read explicitly: REPO_READ leaves out
// public repositories of other projects, which the implicit permission would include.
const listPath = "/repos?permission=REPO_READ"

// Repositories lists every repository the credential may read (GET /repos, REPO_READ), in
// Bitbucket's order, calling fn once per page. Bitbucket pages by offset: after the first
// page, which says the page size Bitbucket applies, the next pages are fetched concurrently
// (up to 4 at a time) at start offsets computed from it, and handed to fn in order; the
// listing ends at the page Bitbucket marks as the last. Should Bitbucket's next start ever
// differ from the offset computed, the listing falls back to following nextPageStart one page
// at a time.
func (c *Client) Repositories(ctx context.Context, fn func(page []forge.Repository) error) error {
	const op = "list repositories"
	first, err := c.repoPage(ctx, op, 0, repoPageLimit)
	if err != nil {
		return err
	}
	if err := fn(convertRepos(first.Values)); err != nil {
		return err
	}
	next, more := first.next()
	if !more {
		return nil
	}
	size := first.Limit
	if size <= 0 || next != first.Start+size {
		// Not offset paging as documented: follow the host's next starts.
		return c.repoPagesFrom(ctx, op, next, fn)
	}
	return c.repoPagesConcurrent(ctx, op, next, size, fn)
}

func (c *Client) repoPage(ctx context.Context, op string, start, limit int) (page[bbRepo], error) {
	var p page[bbRepo]
	_, err := c.do(ctx, request{op: fmt.Sprintf("%s (from %d)", op, start), method: http.MethodGet,
		path: withStart(listPath, start, limit), token: c.cfg.token, out: &p})
	return p, err
}

func convertRepos(list []bbRepo) []forge.Repository {
	out := make([]forge.Repository, 0, len(list))
	for _, r := range list {
		out = append(out, r.toForge())
	}
	return out
}

// repoPagesFrom follows nextPageStart from start, one page at a time.
func (c *Client) repoPagesFrom(ctx context.Context, op string, start int, fn func([]forge.Repository) error) error {
	for {
		p, err := c.repoPage(ctx, op, start, repoPageLimit)
		if err != nil {
			return err
		}
		if err := fn(convertRepos(p.Values)); err != nil {
			return err
		}
		n, ok := p.next()
		if !ok {
			return nil
		}
		start = n
	}
}

// repoPagesConcurrent fetches the pages starting at start, start+size, … and hands them to
// fn in order until the last page. Bitbucket does not say how many pages there are, so the
// look-ahead starts at one page and grows by one with each page received, up to
// listConcurrency in flight: a short listing costs at most one request past its end, a long
// one at most listConcurrency-1 (Bitbucket answers them with empty pages). The first error —
// a page's or fn's — cancels the fetches in flight and is returned.
func (c *Client) repoPagesConcurrent(parent context.Context, op string, start, size int, fn func([]forge.Repository) error) error {
	ctx, cancel := context.WithCancel(parent)
	type result struct {
		p   page[bbRepo]
		err error
	}
	var wg sync.WaitGroup
	// Cancel first, then wait: fetches still in flight return at once.
	defer wg.Wait()
	defer cancel()
	var inflight []chan result
	launched := 0
	launch := func() {
		ch := make(chan result, 1)
		inflight = append(inflight, ch)
		pageStart := start + launched*size
		launched++
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.repoPage(ctx, op, pageStart, size)
			ch <- result{p, err}
		}()
	}
	launch()
	for i := 0; ; i++ {
		var r result
		select {
		case r = <-inflight[0]:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		inflight = inflight[1:]
		if r.err != nil {
			return r.err
		}
		want := start + i*size
		n, more := r.p.next()
		if r.p.Start != want || (more && n != want+size) {
			// Not the offsets computed: stop guessing and follow Bitbucket's next starts.
			cancel()
			wg.Wait()
			if r.p.Start != want {
				return c.repoPagesFrom(parent, op, want, fn)
			}
			if err := fn(convertRepos(r.p.Values)); err != nil {
				return err
			}
			return c.repoPagesFrom(parent, op, n, fn)
		}
		if err := fn(convertRepos(r.p.Values)); err != nil {
			return err
		}
		if !more {
			return nil
		}
		for len(inflight) < min(listConcurrency, i+2) {
			launch()
		}
	}
}

// Repository fetches a repository by the hint's full name (GET /projects/{key}/repos/{slug})
// and its default branch, and checks it is still the one with hostID. Bitbucket cannot look a
// repository up by id, so a repository renamed or moved since the hint was taken is
// forge.ErrNotFound until discovery sees its new name.
func (c *Client) Repository(ctx context.Context, hostID string, hint forge.Repository) (forge.Repository, error) {
	op := "get repository " + hint.FullName
	path, err := repoPath(hint)
	if err != nil {
		return forge.Repository{}, fmt.Errorf("get repository %s: %w", hostID, err)
	}
	var r bbRepo
	if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, token: c.cfg.token, out: &r}); err != nil {
		return forge.Repository{}, err
	}
	if got := strconv.FormatInt(r.ID, 10); got != hostID {
		return forge.Repository{}, &forge.HostError{Op: op, Status: http.StatusNotFound,
			Message: fmt.Sprintf("%s is now repository %s, not %s: the repository was deleted, renamed or replaced", hint.FullName, got, hostID),
			Err:     forge.ErrNotFound}
	}
	out := r.toForge()
	var ref struct {
		ID        string `json:"id"`
		DisplayID string `json:"displayId"`
	}
	_, err = c.do(ctx, request{op: "get the default branch of " + hint.FullName, method: http.MethodGet, path: path + "/default-branch", token: c.cfg.token, out: &ref})
	switch {
	case err == nil:
		out.DefaultBranch = strings.TrimPrefix(ref.ID, "refs/heads/")
	case errors.Is(err, forge.ErrNotFound):
		// An empty repository has no default branch yet.
	default:
		return forge.Repository{}, err
	}
	return out, nil
}
