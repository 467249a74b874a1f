package githubfake

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// What each endpoint needs, from GitHub's per-endpoint permission tables.
var (
	needRead      = need{role: "pull", permission: "metadata", level: "read"}
	needHooksRead = need{role: "admin", permission: "repository_hooks", level: "read", scopes: []string{"read:repo_hook"}}
	needHooks     = need{role: "admin", permission: "repository_hooks", level: "write", scopes: []string{"write:repo_hook"}}
	needContents  = need{role: "push", permission: "contents", level: "write", scopes: []string{"public_repo"}}
	needPulls     = need{role: "push", permission: "pull_requests", level: "write", scopes: []string{"public_repo"}}
)

// repoOf finds {owner}/{repo}; a renamed repository's old name redirects with a 301.
func (s *Server) repoOf(c *call, n need) (*repo, *reply) {
	full := strings.ToLower(c.r.PathValue("owner") + "/" + c.r.PathValue("repo"))
	id, ok := s.names[full]
	if !ok {
		if moved, ok := s.moved[full]; ok && c.r.Method == http.MethodGet && s.role(c.who, s.repos[moved]) != "" {
			loc := fmt.Sprintf("%s/repositories/%d", s.API, moved)
			rep := jsonReply(http.StatusMovedPermanently, map[string]string{
				"message": "Moved Permanently", "url": loc, "documentation_url": docsURL,
			})
			rep.header = http.Header{"Location": {loc}}
			return nil, &rep
		}
		rep := notFound()
		return nil, &rep
	}
	r := s.repos[id]
	if fail := s.allow(c.who, r, n); fail != nil {
		return nil, fail
	}
	return r, nil
}

func permsJSON(role string) *repoPermsJSON {
	if role == "" {
		return nil
	}
	return &repoPermsJSON{
		Admin: role == "admin", Maintain: role == "admin", Push: roles[role] >= roles["push"],
		Triage: roles[role] >= roles["push"], Pull: true,
	}
}

func (s *Server) getRepo(c *call) reply {
	r, fail := s.repoOf(c, needRead)
	if fail != nil {
		return *fail
	}
	return jsonReply(http.StatusOK, s.repoJSON(r, permsJSON(s.role(c.who, r)), true))
}

func (s *Server) getRepoByID(c *call) reply {
	id, _ := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	r := s.repos[id]
	if r == nil {
		return notFound()
	}
	if fail := s.allow(c.who, r, needRead); fail != nil {
		return *fail
	}
	return jsonReply(http.StatusOK, s.repoJSON(r, permsJSON(s.role(c.who, r)), true))
}

func (s *Server) sortedRepos(keep func(*repo) bool) []*repo {
	var out []*repo
	for _, r := range s.index().byID {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func (s *Server) installationRepos(c *call) reply {
	if c.who.kind != kindInstallation {
		if c.who.kind == 0 {
			return errReply(http.StatusUnauthorized, "Requires authentication")
		}
		return errReply(http.StatusForbidden, "You must authenticate with an installation access token in order to list repositories for an installation.")
	}
	t := c.who.token
	all := s.sortedRepos(func(r *repo) bool { return t.install.covers(r) && (t.repos == nil || t.repos[r.id]) })
	items, links, bad := paginate(c.r, all)
	if bad != nil {
		return *bad
	}
	out := make([]repoJSON, 0, len(items))
	for _, r := range items {
		out = append(out, s.repoJSON(r, permsJSON(s.role(c.who, r)), false))
	}
	rep := jsonReply(http.StatusOK, struct {
		TotalCount          int        `json:"total_count"`
		Repositories        []repoJSON `json:"repositories"`
		RepositorySelection string     `json:"repository_selection"`
	}{len(all), out, t.install.selection()})
	rep.link = links
	return rep
}

func (s *Server) requireUser(c *call) (*account, *reply) {
	switch c.who.kind {
	case kindPAT, kindUser:
		return c.who.token.user, nil
	case 0:
		rep := errReply(http.StatusUnauthorized, "Requires authentication")
		return nil, &rep
	}
	rep := errReply(http.StatusForbidden, "Resource not accessible by integration")
	return nil, &rep
}

func (s *Server) getUser(c *call) reply {
	u, fail := s.requireUser(c)
	if fail != nil {
		return *fail
	}
	owned := 0
	for _, r := range s.repos {
		if r.owner == u && r.visibility != "public" {
			owned++
		}
	}
	return jsonReply(http.StatusOK, privateUserJSON{
		userJSON:          s.userJSON(u),
		Name:              strPtr(u.login),
		Email:             strPtr(strings.ToLower(u.login) + "@users.noreply.example.com"),
		CreatedAt:         ts(u.created),
		UpdatedAt:         ts(u.created),
		TotalPrivateRepos: owned,
		OwnedPrivateRepos: owned,
		Plan:              planJSON{Name: "enterprise", Space: 976562499, PrivateRepos: 9999},
	})
}

// userRepos is GET /user/repos with GitHub's affiliation and visibility filters, sorted by
// full name.
func (s *Server) userRepos(c *call) reply {
	u, fail := s.requireUser(c)
	if fail != nil {
		return *fail
	}
	q := c.r.URL.Query()
	if q.Get("type") != "" && (q.Get("affiliation") != "" || q.Get("visibility") != "") {
		return validationFailed("If you specify visibility or affiliation, you cannot specify type.")
	}
	aff := map[string]bool{"owner": true, "collaborator": true, "organization_member": true}
	if v := q.Get("affiliation"); v != "" {
		aff = map[string]bool{}
		for _, a := range strings.Split(v, ",") {
			aff[strings.TrimSpace(a)] = true
		}
	}
	vis := q.Get("visibility")
	login := strings.ToLower(u.login)
	var all []*repo
	for _, r := range s.index().byName {
		if vis == "public" && r.visibility != "public" || vis == "private" && r.visibility == "public" {
			continue
		}
		_, member := r.owner.members[login]
		_, collab := r.collaborators[login]
		if !(aff["owner"] && r.owner == u || aff["organization_member"] && member || aff["collaborator"] && collab) {
			continue
		}
		if s.role(c.who, r) != "" {
			all = append(all, r)
		}
	}
	items, links, bad := paginate(c.r, all)
	if bad != nil {
		return *bad
	}
	out := make([]repoJSON, 0, len(items))
	for _, r := range items {
		out = append(out, s.repoJSON(r, permsJSON(s.role(c.who, r)), false))
	}
	rep := jsonReply(http.StatusOK, out)
	rep.link = links
	return rep
}

func (s *Server) listHooks(c *call) reply {
	r, fail := s.repoOf(c, needHooksRead)
	if fail != nil {
		return *fail
	}
	items, links, bad := paginate(c.r, r.hooks)
	if bad != nil {
		return *bad
	}
	out := make([]hookJSON, 0, len(items))
	for _, h := range items {
		out = append(out, s.hookJSON(r, h))
	}
	rep := jsonReply(http.StatusOK, out)
	rep.link = links
	return rep
}

func (s *Server) hookOf(c *call, n need) (*repo, *hook, *reply) {
	r, fail := s.repoOf(c, n)
	if fail != nil {
		return nil, nil, fail
	}
	id, err := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	if err == nil {
		for _, h := range r.hooks {
			if h.id == id {
				return r, h, nil
			}
		}
	}
	rep := notFound()
	return nil, nil, &rep
}

func (s *Server) getHook(c *call) reply {
	r, h, fail := s.hookOf(c, needHooksRead)
	if fail != nil {
		return *fail
	}
	return jsonReply(http.StatusOK, s.hookJSON(r, h))
}

// hookConfig is a webhook's config as clients send it; insecure_ssl may be a string or a
// number.
type hookConfig struct {
	URL         *string `json:"url"`
	ContentType *string `json:"content_type"`
	Secret      *string `json:"secret"`
	InsecureSSL any     `json:"insecure_ssl"`
}

func (hc *hookConfig) insecure() (string, bool) {
	switch v := hc.InsecureSSL.(type) {
	case nil:
		return "0", true
	case string:
		return v, v == "0" || v == "1"
	case float64:
		if v == 0 || v == 1 {
			return strconv.Itoa(int(v)), true
		}
	}
	return "", false
}

func hookInvalid(msg string) reply {
	return validationFailed("Validation Failed", validationEntry{Resource: "Hook", Code: "custom", Message: msg})
}

// apply validates and sets a config on h. GitHub replaces the whole config on update, so a
// config without a secret removes the secret.
func (hc *hookConfig) apply(h *hook) *reply {
	if hc.URL == nil || *hc.URL == "" {
		rep := hookInvalid("Config must contain URL.")
		return &rep
	}
	if !strings.HasPrefix(*hc.URL, "http://") && !strings.HasPrefix(*hc.URL, "https://") {
		rep := hookInvalid("Config url must be a valid URL.")
		return &rep
	}
	ct := "form"
	if hc.ContentType != nil {
		ct = *hc.ContentType
	}
	if ct != "json" && ct != "form" {
		rep := hookInvalid("Config content_type must be json or form.")
		return &rep
	}
	ins, ok := hc.insecure()
	if !ok {
		rep := hookInvalid("Config insecure_ssl must be 0 or 1.")
		return &rep
	}
	h.url, h.contentType, h.insecureSSL, h.secret = *hc.URL, ct, ins, ""
	if hc.Secret != nil {
		h.secret = *hc.Secret
	}
	return nil
}

var knownEvents = []string{
	"*", "branch_protection_rule", "check_run", "check_suite", "create", "delete", "deployment",
	"deployment_status", "fork", "gollum", "issue_comment", "issues", "label", "member", "meta",
	"milestone", "ping", "public", "pull_request", "pull_request_review", "pull_request_review_comment",
	"pull_request_review_thread", "push", "release", "repository", "star", "status", "team_add", "watch",
	"workflow_job", "workflow_run",
}

func validEvents(evs []string) *reply {
	for _, e := range evs {
		if !slices.Contains(knownEvents, e) {
			rep := validationFailed("Validation Failed", validationEntry{Resource: "Hook", Field: "events", Code: "invalid", Message: e + " is not a valid event name"})
			return &rep
		}
	}
	return nil
}

func (s *Server) createHook(c *call) reply {
	r, fail := s.repoOf(c, needHooks)
	if fail != nil {
		return *fail
	}
	var req struct {
		Name   *string     `json:"name"`
		Config *hookConfig `json:"config"`
		Events []string    `json:"events"`
		Active *bool       `json:"active"`
	}
	if bad := c.decode(&req); bad != nil {
		return *bad
	}
	if req.Name != nil && *req.Name != "web" {
		return validationFailed("Validation Failed", validationEntry{Resource: "Hook", Field: "name", Code: "invalid"})
	}
	if req.Config == nil {
		return hookInvalid("Config must contain URL.")
	}
	h := &hook{id: s.nextID(), events: req.Events, active: true, last: LastResponse{Status: "unused"}, createdAt: s.now(), updatedAt: s.now()}
	if bad := req.Config.apply(h); bad != nil {
		return *bad
	}
	if h.events == nil {
		h.events = []string{"push"}
	}
	if bad := validEvents(h.events); bad != nil {
		return *bad
	}
	if req.Active != nil {
		h.active = *req.Active
	}
	for _, o := range r.hooks {
		if o.url == h.url && slices.Equal(o.events, h.events) {
			return hookInvalid("Hook already exists on this repository")
		}
	}
	r.hooks = append(r.hooks, h)
	rep := jsonReply(http.StatusCreated, s.hookJSON(r, h))
	rep.header = http.Header{"Location": {fmt.Sprintf("%s/repos/%s/hooks/%d", s.API, r.fullName(), h.id)}}
	return rep
}

func (s *Server) updateHook(c *call) reply {
	r, h, fail := s.hookOf(c, needHooks)
	if fail != nil {
		return *fail
	}
	var req struct {
		Config       *hookConfig `json:"config"`
		Events       []string    `json:"events"`
		AddEvents    []string    `json:"add_events"`
		RemoveEvents []string    `json:"remove_events"`
		Active       *bool       `json:"active"`
	}
	if bad := c.decode(&req); bad != nil {
		return *bad
	}
	next := *h
	if req.Config != nil {
		if bad := req.Config.apply(&next); bad != nil {
			return *bad
		}
	}
	if req.Events != nil {
		next.events = slices.Clone(req.Events)
	}
	for _, e := range req.AddEvents {
		if !slices.Contains(next.events, e) {
			next.events = append(next.events, e)
		}
	}
	next.events = slices.DeleteFunc(slices.Clone(next.events), func(e string) bool { return slices.Contains(req.RemoveEvents, e) })
	if bad := validEvents(next.events); bad != nil {
		return *bad
	}
	if req.Active != nil {
		next.active = *req.Active
	}
	next.updatedAt = s.now()
	*h = next
	return jsonReply(http.StatusOK, s.hookJSON(r, h))
}

func (s *Server) deleteHook(c *call) reply {
	r, h, fail := s.hookOf(c, needHooks)
	if fail != nil {
		return *fail
	}
	r.hooks = slices.DeleteFunc(r.hooks, func(x *hook) bool { return x == h })
	return reply{status: http.StatusNoContent}
}

func (s *Server) listBranches(c *call) reply {
	r, fail := s.repoOf(c, needRead)
	if fail != nil {
		return *fail
	}
	names := make([]string, 0, len(r.branches))
	for n := range r.branches {
		names = append(names, n)
	}
	sort.Strings(names)
	items, links, bad := paginate(c.r, names)
	if bad != nil {
		return *bad
	}
	out := make([]branchJSON, 0, len(items))
	api := s.API + "/repos/" + r.fullName()
	for _, n := range items {
		out = append(out, branchJSON{
			Name:          n,
			Commit:        branchCommitJSON{SHA: r.branches[n], URL: api + "/commits/" + r.branches[n]},
			ProtectionURL: api + "/branches/" + n + "/protection",
		})
	}
	rep := jsonReply(http.StatusOK, out)
	rep.link = links
	return rep
}

func (s *Server) getRef(c *call) reply {
	r, fail := s.repoOf(c, needRead)
	if fail != nil {
		return *fail
	}
	ref := c.r.PathValue("ref")
	if b, ok := strings.CutPrefix(ref, "heads/"); ok {
		if sha, ok := r.branches[b]; ok {
			return jsonReply(http.StatusOK, s.gitRefJSON(r, "refs/"+ref, sha))
		}
	}
	return notFound()
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

func (s *Server) createRef(c *call) reply {
	r, fail := s.repoOf(c, needContents)
	if fail != nil {
		return *fail
	}
	var req struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	}
	if bad := c.decode(&req); bad != nil {
		return *bad
	}
	if !strings.HasPrefix(req.Ref, "refs/") || strings.Count(req.Ref, "/") < 2 || strings.Contains(req.Ref, "..") || strings.HasSuffix(req.Ref, "/") {
		return validationFailed("Reference name is invalid")
	}
	if !shaRE.MatchString(req.SHA) || !r.commits[req.SHA] {
		return validationFailed("Object does not exist")
	}
	branch, isBranch := strings.CutPrefix(req.Ref, "refs/heads/")
	if !isBranch {
		return validationFailed("Reference name is invalid") // the fake keeps branches only
	}
	if _, exists := r.branches[branch]; exists {
		return validationFailed("Reference already exists")
	}
	r.branches[branch] = req.SHA
	rep := jsonReply(http.StatusCreated, s.gitRefJSON(r, req.Ref, req.SHA))
	rep.header = http.Header{"Location": {s.API + "/repos/" + r.fullName() + "/git/" + req.Ref}}
	return rep
}

func (s *Server) deleteRef(c *call) reply {
	r, fail := s.repoOf(c, needContents)
	if fail != nil {
		return *fail
	}
	b, ok := strings.CutPrefix(c.r.PathValue("ref"), "heads/")
	if _, exists := r.branches[b]; !ok || !exists {
		return validationFailed("Reference does not exist")
	}
	delete(r.branches, b)
	return reply{status: http.StatusNoContent}
}

func (s *Server) createPull(c *call) reply {
	r, fail := s.repoOf(c, needPulls)
	if fail != nil {
		return *fail
	}
	var req struct {
		Title string `json:"title"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Body  string `json:"body"`
		Draft bool   `json:"draft"`
	}
	if bad := c.decode(&req); bad != nil {
		return *bad
	}
	head := req.Head
	if owner, b, ok := strings.Cut(head, ":"); ok {
		if !strings.EqualFold(owner, r.owner.login) {
			return validationFailed("Validation Failed", validationEntry{Resource: "PullRequest", Field: "head", Code: "invalid"})
		}
		head = b
	}
	if req.Title == "" {
		return validationFailed("Validation Failed", validationEntry{Resource: "PullRequest", Field: "title", Code: "missing_field"})
	}
	headSHA, okHead := r.branches[head]
	baseSHA, okBase := r.branches[req.Base]
	switch {
	case !okHead:
		return validationFailed("Validation Failed", validationEntry{Resource: "PullRequest", Field: "head", Code: "invalid"})
	case !okBase:
		return validationFailed("Validation Failed", validationEntry{Resource: "PullRequest", Field: "base", Code: "invalid"})
	case headSHA == baseSHA:
		return validationFailed("Validation Failed", validationEntry{Resource: "PullRequest", Code: "custom", Message: "No commits between " + req.Base + " and " + head})
	}
	for _, p := range r.pulls {
		if p.state == "open" && p.head == head && p.base == req.Base {
			return validationFailed("Validation Failed", validationEntry{Resource: "PullRequest", Code: "custom", Message: "A pull request already exists for " + r.owner.login + ":" + head + "."})
		}
	}
	author := r.owner
	switch c.who.kind {
	case kindPAT, kindUser:
		author = c.who.token.user
	case kindInstallation:
		author = s.accountLocked(s.apps[c.who.token.install.appID].slug+"[bot]", "Bot")
	}
	p := &pull{
		id: s.nextID(), number: int64(len(r.pulls) + 1), title: req.Title, body: req.Body, head: head, base: req.Base,
		headSHA: headSHA, baseSHA: baseSHA, draft: req.Draft, state: "open", author: author, createdAt: s.now(),
	}
	r.pulls = append(r.pulls, p)
	rep := jsonReply(http.StatusCreated, s.pullJSON(r, p))
	rep.header = http.Header{"Location": {fmt.Sprintf("%s/repos/%s/pulls/%d", s.API, r.fullName(), p.number)}}
	return rep
}

func (s *Server) meta(*call) reply {
	return jsonReply(http.StatusOK, metaJSON{
		Hooks: []string{"127.0.0.1/32"}, Web: []string{"127.0.0.1/32"}, API: []string{"127.0.0.1/32"}, Git: []string{"127.0.0.1/32"},
	})
}

func (s *Server) rateLimit(c *call) reply {
	b := s.budgetLocked(c.who.subject())
	limit := s.opts.RateLimit
	if c.who.kind == 0 {
		limit = 60
	}
	core := rateJSON{Limit: limit, Remaining: max(limit-b.used, 0), Reset: b.reset.Unix(), Used: b.used}
	search := rateJSON{Limit: 30, Remaining: 30, Reset: b.reset.Unix()}
	return jsonReply(http.StatusOK, rateOverviewJSON{
		Resources: map[string]rateJSON{"core": core, "search": search, "graphql": core},
		Rate:      core,
	})
}
