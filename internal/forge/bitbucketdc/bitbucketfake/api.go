package bitbucketfake

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Server) routes() {
	s.api("GET /application-properties", s.appProperties)
	s.api("GET /repos", s.listRepos)
	s.api("GET /projects/{key}/repos", s.projectRepos)
	s.api("GET /projects/{key}/repos/{slug}", s.getRepo)
	s.api("GET /projects/{key}/repos/{slug}/default-branch", s.getDefaultBranch)
	s.api("GET /projects/{key}/repos/{slug}/branches", s.listBranches)
	s.api("POST /projects/{key}/repos/{slug}/branches", s.createBranch)
	s.api("GET /projects/{key}/repos/{slug}/webhooks", s.listHooks)
	s.api("POST /projects/{key}/repos/{slug}/webhooks", s.createHook)
	s.api("GET /projects/{key}/repos/{slug}/webhooks/{id}", s.getHook)
	s.api("PUT /projects/{key}/repos/{slug}/webhooks/{id}", s.updateHook)
	s.api("DELETE /projects/{key}/repos/{slug}/webhooks/{id}", s.deleteHook)
	s.api("GET /projects/{key}/repos/{slug}/webhooks/{id}/statistics/summary", s.hookStatistics)
	s.api("POST /projects/{key}/repos/{slug}/pull-requests", s.createPull)
	s.api("GET /projects/{key}/repos/{slug}/pull-requests/{id}", s.getPull)
	s.mux.HandleFunc("/rest/", func(w http.ResponseWriter, r *http.Request) {
		s.serveAPI(w, r, func(*call) reply {
			return errReply(http.StatusNotFound, "", "No resource at "+r.URL.Path)
		})
	})
	s.mux.Handle("/scm/", s.git)
}

func (s *Server) appProperties(*call) reply {
	return jsonReply(http.StatusOK, map[string]string{
		"version": s.opts.Version, "buildNumber": strings.ReplaceAll(s.opts.Version, ".", "") + "000",
		"buildDate": "1727740800000", "displayName": "Bitbucket",
	})
}

// listRepos is GET /repos: the repositories the caller may see with the permission asked for
// (implicit read without one), filtered by project key, name, visibility and archived state.
func (s *Server) listRepos(c *call) reply {
	q := c.r.URL.Query()
	want := permNone
	if v := q.Get("permission"); v != "" {
		p, ok := parsePerm(v)
		if !ok || !strings.HasPrefix(strings.ToUpper(v), "REPO_") {
			return badRequest(fmt.Sprintf("%q is not a repository permission", v))
		}
		want = p
	}
	archived := strings.ToUpper(q.Get("archived"))
	var out []repoJSON
	for _, r := range s.sortedReposLocked() {
		switch {
		case want == permNone && !s.readable(c.who, r):
			continue
		case want != permNone && s.perm(c.who, r) < want:
			continue
		case q.Get("projectkey") != "" && !strings.EqualFold(strings.TrimSpace(q.Get("projectkey")), r.project.key):
			continue
		case q.Get("name") != "" && !strings.EqualFold(strings.TrimSpace(q.Get("name")), r.name):
			continue
		case q.Get("visibility") == "public" && !r.public, q.Get("visibility") == "private" && r.public:
			continue
		case archived == "ARCHIVED" && !r.archived, (archived == "" || archived == "ACTIVE") && r.archived:
			continue
		}
		out = append(out, s.repoJSON(r))
	}
	return jsonReply(http.StatusOK, pageOf(s, c.r, out))
}

func (s *Server) projectRepos(c *call) reply {
	key := c.r.PathValue("key")
	p := s.projects[strings.ToUpper(key)]
	if p == nil {
		return noSuchProject(key)
	}
	var out []repoJSON
	for _, r := range s.sortedReposLocked() {
		if r.project == p && s.readable(c.who, r) {
			out = append(out, s.repoJSON(r))
		}
	}
	return jsonReply(http.StatusOK, pageOf(s, c.r, out))
}

func noSuchProject(key string) reply {
	return errReply(http.StatusNotFound, "com.atlassian.bitbucket.project.NoSuchProjectException", fmt.Sprintf("Project %s does not exist.", key))
}

func noSuchRepo(key, slug string) reply {
	return errReply(http.StatusNotFound, "com.atlassian.bitbucket.repository.NoSuchRepositoryException", fmt.Sprintf("Repository %s/%s does not exist.", key, slug))
}

// repoFor finds the request's repository if the caller may see it: Bitbucket answers 404 for
// a repository an authenticated caller cannot see, and 401 to an anonymous one.
func (s *Server) repoFor(c *call) (*repo, *reply) {
	key, slug := c.r.PathValue("key"), c.r.PathValue("slug")
	if s.projects[strings.ToUpper(key)] == nil {
		rep := noSuchProject(key)
		return nil, &rep
	}
	r := s.findRepoLocked(key, slug)
	if r == nil {
		rep := noSuchRepo(key, slug)
		return nil, &rep
	}
	if !s.readable(c.who, r) {
		rep := noSuchRepo(key, slug)
		if c.who.anonymous() {
			rep = notPermitted()
		}
		return nil, &rep
	}
	return r, nil
}

// repoWith is repoFor, then at least permission p on it.
func (s *Server) repoWith(c *call, p perm) (*repo, *reply) {
	r, rep := s.repoFor(c)
	if rep != nil {
		return nil, rep
	}
	if s.perm(c.who, r) < p {
		rep := notPermitted()
		return nil, &rep
	}
	return r, nil
}

func (s *Server) getRepo(c *call) reply {
	r, rep := s.repoFor(c)
	if rep != nil {
		return *rep
	}
	return jsonReply(http.StatusOK, s.repoJSON(r))
}

// branchesLocked reads the repository's branches: from git for a real repository.
func (s *Server) branchesLocked(r *repo) (map[string]string, string, error) {
	if r.gitDir == "" {
		return r.branches, r.defaultBranch, nil
	}
	b, err := gitBranches(r.gitDir)
	if err != nil {
		return nil, "", err
	}
	return b, gitHead(r.gitDir), nil
}

func (s *Server) getDefaultBranch(c *call) reply {
	r, rep := s.repoFor(c)
	if rep != nil {
		return *rep
	}
	branches, def, err := s.branchesLocked(r)
	if err != nil {
		return errReply(http.StatusInternalServerError, "", err.Error())
	}
	if _, ok := branches[def]; !ok {
		return errReply(http.StatusNotFound, "com.atlassian.bitbucket.repository.NoDefaultBranchException",
			fmt.Sprintf("Repository %s does not have a default branch.", r.fullName()))
	}
	return jsonReply(http.StatusOK, minimalRefJSON{ID: "refs/heads/" + def, DisplayID: def, Type: "BRANCH"})
}

func (s *Server) listBranches(c *call) reply {
	r, rep := s.repoFor(c)
	if rep != nil {
		return *rep
	}
	branches, def, err := s.branchesLocked(r)
	if err != nil {
		return errReply(http.StatusInternalServerError, "", err.Error())
	}
	filter := strings.ToLower(c.r.URL.Query().Get("filterText"))
	names := make([]string, 0, len(branches))
	for n := range branches {
		if strings.Contains(strings.ToLower(n), filter) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]branchJSON, 0, len(names))
	for _, n := range names {
		out = append(out, branchOf(n, branches[n], n == def))
	}
	return jsonReply(http.StatusOK, pageOf(s, c.r, out))
}

// validBranchName follows git's ref name rules, roughly.
func validBranchName(n string) bool {
	if n == "" || strings.HasPrefix(n, "-") || strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") || strings.HasSuffix(n, ".lock") ||
		strings.Contains(n, "..") || strings.Contains(n, "//") || strings.Contains(n, "@{") {
		return false
	}
	return !strings.ContainsAny(n, " ~^:?*[\\\x7f") && !strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 })
}

func (s *Server) createBranch(c *call) reply {
	r, rep := s.repoWith(c, permWrite)
	if rep != nil {
		return *rep
	}
	var in struct {
		Name       string `json:"name"`
		StartPoint string `json:"startPoint"`
		Message    string `json:"message"`
	}
	if rep := c.decode(&in); rep != nil {
		return *rep
	}
	name := strings.TrimPrefix(in.Name, "refs/heads/")
	if !validBranchName(name) {
		return badRequest(fmt.Sprintf("%q is not a valid branch name", in.Name))
	}
	branches, _, err := s.branchesLocked(r)
	if err != nil {
		return errReply(http.StatusInternalServerError, "", err.Error())
	}
	if _, ok := branches[name]; ok {
		return errReply(http.StatusConflict, "com.atlassian.bitbucket.repository.DuplicateRefException",
			fmt.Sprintf("Branch '%s' already exists in repository '%s' of project %s.", name, r.slug, r.project.key))
	}
	sha, ok := s.resolveLocked(r, branches, in.StartPoint)
	if !ok {
		return errReply(http.StatusNotFound, "com.atlassian.bitbucket.commit.NoSuchCommitException",
			fmt.Sprintf("Commit '%s' does not exist in repository '%s'.", in.StartPoint, r.slug))
	}
	if r.gitDir != "" {
		if err := gitCreateBranch(r.gitDir, name, sha); err != nil {
			return errReply(http.StatusInternalServerError, "", err.Error())
		}
	} else {
		r.branches[name] = sha
	}
	return jsonReply(http.StatusOK, branchOf(name, sha, false))
}

// resolveLocked turns a start point (a commit id or a branch) into a commit id.
func (s *Server) resolveLocked(r *repo, branches map[string]string, point string) (string, bool) {
	point = strings.TrimSpace(point)
	if sha, ok := branches[strings.TrimPrefix(point, "refs/heads/")]; ok {
		return sha, true
	}
	if r.gitDir != "" {
		sha, err := gitResolve(r.gitDir, point)
		return sha, err == nil
	}
	return point, r.commits[point]
}

// hookIn is a webhook as a client sends it to create or replace one.
type hookIn struct {
	Name                    *string           `json:"name"`
	Events                  []string          `json:"events"`
	Configuration           map[string]any    `json:"configuration"`
	URL                     *string           `json:"url"`
	Active                  *bool             `json:"active"`
	SSLVerificationRequired *bool             `json:"sslVerificationRequired"`
	Credentials             *basicCredentials `json:"credentials"`
}

// webhookEvents are the event keys Bitbucket 9.2 accepts on a repository webhook.
func webhookEvents() []string {
	return []string{
		"repo:refs_changed", "repo:modified", "repo:forked", "repo:comment:added", "repo:comment:edited", "repo:comment:deleted",
		"repo:secret_detected", "mirror:repo_synchronized",
		"pr:opened", "pr:from_ref_updated", "pr:modified", "pr:reviewer:updated", "pr:reviewer:approved", "pr:reviewer:unapproved",
		"pr:reviewer:needs_work", "pr:reviewer:changes_requested", "pr:merged", "pr:declined", "pr:deleted",
		"pr:comment:added", "pr:comment:edited", "pr:comment:deleted",
	}
}

// apply checks in and sets it on h; fresh says whether h is being created (every field
// required) or replaced (fields left out keep their value).
func (in hookIn) apply(h *hook, fresh bool) *reply {
	fail := func(msg string) *reply { r := badRequest(msg); return &r }
	if in.Name != nil {
		h.name = strings.TrimSpace(*in.Name)
	}
	if h.name == "" {
		return fail("The webhook needs a name.")
	}
	if in.URL != nil {
		h.url = strings.TrimSpace(*in.URL)
	}
	if u, err := url.Parse(h.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("The webhook URL must be an absolute http or https URL.")
	}
	if in.Events != nil || fresh {
		if len(in.Events) == 0 {
			return fail("The webhook needs at least one event.")
		}
		for _, e := range in.Events {
			if !slices.Contains(webhookEvents(), e) {
				return fail(fmt.Sprintf("%q is not a webhook event.", e))
			}
		}
		h.events = slices.Compact(slices.Sorted(slices.Values(in.Events)))
	}
	if in.Configuration != nil || fresh {
		h.secret = ""
		if v, ok := in.Configuration["secret"]; ok {
			sec, isString := v.(string)
			if !isString {
				return fail("configuration.secret must be a string.")
			}
			h.secret = sec
		}
	}
	if in.Active != nil {
		h.active = *in.Active
	} else if fresh {
		h.active = true
	}
	if in.SSLVerificationRequired != nil {
		h.sslVerify = *in.SSLVerificationRequired
	} else if fresh {
		h.sslVerify = true
	}
	return nil
}

func (s *Server) listHooks(c *call) reply {
	r, rep := s.repoWith(c, permAdmin)
	if rep != nil {
		return *rep
	}
	event := c.r.URL.Query().Get("event")
	out := []hookJSON{}
	for _, h := range r.hooks {
		if event == "" || slices.Contains(h.events, event) {
			out = append(out, hookOut(h))
		}
	}
	return jsonReply(http.StatusOK, pageOf(s, c.r, out))
}

func (s *Server) createHook(c *call) reply {
	r, rep := s.repoWith(c, permAdmin)
	if rep != nil {
		return *rep
	}
	var in hookIn
	if rep := c.decode(&in); rep != nil {
		return *rep
	}
	now := s.now()
	h := &hook{id: s.nextID(), created: now, updated: now}
	if rep := in.apply(h, true); rep != nil {
		return *rep
	}
	r.hooks = append(r.hooks, h)
	return jsonReply(http.StatusCreated, hookOut(h))
}

func (s *Server) hookFor(c *call) (*repo, *hook, *reply) {
	r, rep := s.repoWith(c, permAdmin)
	if rep != nil {
		return nil, nil, rep
	}
	id, _ := strconv.Atoi(c.r.PathValue("id"))
	for _, h := range r.hooks {
		if h.id == id {
			return r, h, nil
		}
	}
	nf := errReply(http.StatusNotFound, "com.atlassian.webhooks.NoSuchWebhookException", fmt.Sprintf("No webhook with id %s exists.", c.r.PathValue("id")))
	return nil, nil, &nf
}

func (s *Server) getHook(c *call) reply {
	_, h, rep := s.hookFor(c)
	if rep != nil {
		return *rep
	}
	return jsonReply(http.StatusOK, hookOut(h))
}

func (s *Server) updateHook(c *call) reply {
	_, h, rep := s.hookFor(c)
	if rep != nil {
		return *rep
	}
	var in hookIn
	if rep := c.decode(&in); rep != nil {
		return *rep
	}
	next := *h
	if rep := in.apply(&next, false); rep != nil {
		return *rep
	}
	next.updated = s.now()
	*h = next
	return jsonReply(http.StatusOK, hookOut(h))
}

func (s *Server) deleteHook(c *call) reply {
	r, h, rep := s.hookFor(c)
	if rep != nil {
		return *rep
	}
	r.hooks = slices.DeleteFunc(r.hooks, func(x *hook) bool { return x == h })
	return reply{status: http.StatusNoContent}
}

func (s *Server) hookStatistics(c *call) reply {
	r, h, rep := s.hookFor(c)
	if rep != nil {
		return *rep
	}
	scope := itoa(r.id)
	out := map[string]any{"counts": map[string]int{"successes": h.successes, "failures": h.failures, "errors": h.errors}}
	for k, inv := range map[string]*invocation{"lastSuccess": h.lastSuccess, "lastFailure": h.lastFailure, "lastError": h.lastError} {
		if inv != nil {
			out[k] = invocationOut(inv, scope)
		}
	}
	return jsonReply(http.StatusOK, out)
}

// refIn is one side of a new pull request.
type refIn struct {
	ID         string `json:"id"`
	Repository *struct {
		Slug    string `json:"slug"`
		Project struct {
			Key string `json:"key"`
		} `json:"project"`
	} `json:"repository"`
}

func (s *Server) createPull(c *call) reply {
	to, rep := s.repoFor(c)
	if rep != nil {
		return *rep
	}
	var in struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		Draft       bool   `json:"draft"`
		FromRef     refIn  `json:"fromRef"`
		ToRef       refIn  `json:"toRef"`
	}
	if rep := c.decode(&in); rep != nil {
		return *rep
	}
	if strings.TrimSpace(in.Title) == "" {
		return badRequest("The pull request needs a title.")
	}
	from := to
	if in.FromRef.Repository != nil {
		from = s.findRepoLocked(in.FromRef.Repository.Project.Key, in.FromRef.Repository.Slug)
		if from == nil || !s.readable(c.who, from) {
			return noSuchRepo(in.FromRef.Repository.Project.Key, in.FromRef.Repository.Slug)
		}
		if from != to && from.origin != to && to.origin != from {
			return badRequest("The source repository is neither the target repository nor a fork of it.")
		}
	}
	fromRef, toRef := fullRef(in.FromRef.ID), fullRef(in.ToRef.ID)
	fromBranches, _, err := s.branchesLocked(from)
	if err != nil {
		return errReply(http.StatusInternalServerError, "", err.Error())
	}
	toBranches, _, err := s.branchesLocked(to)
	if err != nil {
		return errReply(http.StatusInternalServerError, "", err.Error())
	}
	fromSHA, ok1 := fromBranches[strings.TrimPrefix(fromRef, "refs/heads/")]
	toSHA, ok2 := toBranches[strings.TrimPrefix(toRef, "refs/heads/")]
	if !ok1 || !ok2 {
		missing := fromRef
		if ok1 {
			missing = toRef
		}
		return errReply(http.StatusNotFound, "com.atlassian.bitbucket.repository.NoSuchBranchException", fmt.Sprintf("Repository %s does not contain %s.", to.fullName(), missing))
	}
	if from == to && fromRef == toRef {
		return errReply(http.StatusConflict, "com.atlassian.bitbucket.pull.InvalidPullRequestTargetException", "The source and target of a pull request must differ.")
	}
	for _, p := range to.pulls {
		if p.state == "OPEN" && p.from == from && p.fromRef == fromRef && p.toRef == toRef {
			return errReply(http.StatusConflict, "com.atlassian.bitbucket.pull.DuplicatePullRequestException",
				"Only one pull request may be open for a given source and target branch")
		}
	}
	if c.who.anonymous() {
		return notPermitted()
	}
	now := s.now()
	p := &pull{id: len(to.pulls) + 1, title: in.Title, description: in.Description, from: from, fromRef: fromRef, toRef: toRef,
		fromSHA: fromSHA, toSHA: toSHA, state: "OPEN", draft: in.Draft, author: c.who.user, created: now, updated: now}
	to.pulls = append(to.pulls, p)
	s.deliverPullLocked(to, p, "pr:opened", c.who.user, nil)
	return jsonReply(http.StatusCreated, s.pullJSON(to, p))
}

func fullRef(id string) string {
	if strings.HasPrefix(id, "refs/") {
		return id
	}
	return "refs/heads/" + id
}

func (s *Server) getPull(c *call) reply {
	r, rep := s.repoFor(c)
	if rep != nil {
		return *rep
	}
	id, _ := strconv.Atoi(c.r.PathValue("id"))
	for _, p := range r.pulls {
		if p.id == id {
			return jsonReply(http.StatusOK, s.pullJSON(r, p))
		}
	}
	return errReply(http.StatusNotFound, "com.atlassian.bitbucket.pull.NoSuchPullRequestException", fmt.Sprintf("No pull request exists with ID %d for this repository.", id))
}
