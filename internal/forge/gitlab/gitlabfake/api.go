package gitlabfake

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func (s *Server) getVersion(c *call) reply {
	if c.tok == nil {
		return unauthorized()
	}
	return jsonReply(http.StatusOK, map[string]any{
		"version": s.opts.Version, "revision": "6d558d5d",
		"kas":        map[string]any{"enabled": false, "externalUrl": nil, "version": nil},
		"enterprise": strings.HasSuffix(s.opts.Version, "-ee"),
	})
}

func (s *Server) userJSON(u *user) map[string]any {
	return map[string]any{
		"id": u.id, "username": u.username, "name": u.name, "state": "active", "locked": false,
		"avatar_url": nil, "web_url": s.URL + "/" + u.username,
	}
}

func (s *Server) getUser(c *call) reply {
	if c.tok == nil {
		return unauthorized()
	}
	u := c.user()
	out := s.userJSON(u)
	out["email"] = u.email
	out["public_email"] = ""
	out["bot"] = false
	out["created_at"] = ts(s.now())
	if u.admin {
		out["is_admin"] = true
	}
	return jsonReply(http.StatusOK, out)
}

// getTokenSelf describes the access token of the request; an OAuth token is no access token.
func (s *Server) getTokenSelf(c *call) reply {
	if c.tok == nil {
		return unauthorized()
	}
	t := c.tok
	if t.kind != kindAccess {
		return message(http.StatusNotFound, "404 Not Found")
	}
	var expires any
	if !t.expires.IsZero() {
		expires = t.expires.UTC().Format("2006-01-02")
	}
	return jsonReply(http.StatusOK, map[string]any{
		"id": t.id, "name": t.name, "revoked": t.revoked, "created_at": ts(t.created), "description": nil,
		"scopes": t.scopes, "user_id": t.user.id, "last_used_at": ts(s.now()), "active": !t.revoked && !s.expired(t),
		"expires_at": expires,
	})
}

func visibilityLevel(v string) int {
	switch v {
	case "public":
		return 20
	case "internal":
		return 10
	}
	return 0
}

func (s *Server) namespaceJSON(ns *namespace) map[string]any {
	var parent any
	if ns.parent != nil {
		parent = ns.parent.id
	}
	return map[string]any{
		"id": ns.id, "name": ns.name, "path": ns.path, "kind": ns.kind, "full_path": ns.fullPath,
		"parent_id": parent, "avatar_url": nil, "web_url": s.URL + "/" + ns.fullPath,
	}
}

// projectJSON is a project as GET /projects shows it: the simple form, or with visibility,
// archived, fork and the caller's permissions.
func (s *Server) projectJSON(p *project, u *user, simple bool) map[string]any {
	web := s.URL + "/" + p.fullPath()
	host := strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	out := map[string]any{
		"id": p.id, "description": p.description, "name": p.name, "name_with_namespace": p.ns.name + " / " + p.name,
		"path": p.path, "path_with_namespace": p.fullPath(), "created_at": ts(p.created), "default_branch": p.defaultBranch,
		"tag_list": []string{}, "topics": []string{}, "ssh_url_to_repo": "git@" + host + ":" + p.fullPath() + ".git",
		"http_url_to_repo": web + ".git", "web_url": web, "readme_url": nil, "forks_count": 0, "avatar_url": nil,
		"star_count": 0, "last_activity_at": ts(p.created), "namespace": s.namespaceJSON(p.ns),
	}
	if simple {
		return out
	}
	out["visibility"] = p.visibility
	out["archived"] = p.archived
	out["empty_repo"] = false
	out["_links"] = map[string]string{"self": s.API + "/projects/" + strconv.FormatInt(p.id, 10)}
	if p.forkedFrom != 0 {
		if f, ok := s.projects[p.forkedFrom]; ok {
			out["forked_from_project"] = map[string]any{"id": f.id, "name": f.name, "path": f.path, "path_with_namespace": f.fullPath(), "web_url": s.URL + "/" + f.fullPath()}
		}
	}
	if u != nil {
		access := func(level int) any {
			if level == 0 {
				return nil
			}
			return map[string]int{"access_level": level, "notification_level": 3}
		}
		group := 0
		for ns := p.ns; ns != nil; ns = ns.parent {
			group = max(group, ns.members[u.id])
		}
		out["permissions"] = map[string]any{"project_access": access(p.members[u.id]), "group_access": access(group)}
	}
	return out
}

// listProjects serves GET /projects: membership, simple and archived filters, order_by (id,
// name, path, created_at, updated_at, last_activity_at; default created_at desc), offset
// pagination, or keyset pagination (order_by=id only, as GitLab documents).
func (s *Server) listProjects(c *call) reply {
	u := c.user()
	var items []*project
	for _, p := range s.projects {
		if !s.visibleLocked(u, p) {
			continue
		}
		if c.str("membership") == "true" && (u == nil || s.levelLocked(u, p) < Guest) {
			continue
		}
		if a := c.str("archived"); a != "" && strconv.FormatBool(p.archived) != a {
			continue
		}
		items = append(items, p)
	}
	orderBy, sort := c.str("order_by"), c.str("sort")
	if orderBy == "" {
		orderBy = "created_at"
	}
	switch orderBy {
	case "id", "name", "path", "created_at", "updated_at", "last_activity_at":
	default:
		return jsonReply(http.StatusBadRequest, map[string]any{"error": "order_by does not have a valid value"})
	}
	if sort == "" {
		sort = "desc"
	}
	desc := sort == "desc"
	// Projects are created in id order and never change here: the times sort as the ids do.
	key := func(p *project) string { return fmt.Sprintf("%020d", p.id) }
	switch orderBy {
	case "name":
		key = func(p *project) string { return strings.ToLower(p.name) + "\x00" + fmt.Sprintf("%020d", p.id) }
	case "path":
		key = func(p *project) string { return strings.ToLower(p.path) + "\x00" + fmt.Sprintf("%020d", p.id) }
	}
	slices.SortFunc(items, func(a, b *project) int {
		if desc {
			return strings.Compare(key(b), key(a))
		}
		return strings.Compare(key(a), key(b))
	})
	simple := c.str("simple") == "true"
	render := func(ps []*project) []map[string]any {
		out := make([]map[string]any, 0, len(ps))
		for _, p := range ps {
			out = append(out, s.projectJSON(p, u, simple))
		}
		return out
	}
	if c.str("pagination") != "keyset" {
		pg, info, links := offsetPage(c, items)
		// GitLab leaves out the totals past 10,000 items; nothing here gets that big.
		return reply{status: http.StatusOK, body: render(pg), page: info, links: links}
	}
	if orderBy != "id" {
		return message(http.StatusMethodNotAllowed, "Keyset pagination is not yet available for this type of request")
	}
	per := 20
	if n, err := strconv.Atoi(c.str("per_page")); err == nil {
		per = min(max(n, 1), 100)
	}
	cursorKey := "id_after"
	if desc {
		cursorKey = "id_before"
	}
	if cur := c.str(cursorKey); cur != "" {
		after, err := strconv.ParseInt(cur, 10, 64)
		if err != nil {
			return jsonReply(http.StatusBadRequest, map[string]any{"error": cursorKey + " is invalid"})
		}
		i := slices.IndexFunc(items, func(p *project) bool { return (!desc && p.id > after) || (desc && p.id < after) })
		if i < 0 {
			i = len(items)
		}
		items = items[i:]
	}
	rep := reply{status: http.StatusOK}
	if len(items) > per {
		q := c.r.URL.Query()
		q.Set(cursorKey, strconv.FormatInt(items[per-1].id, 10))
		rep.links = []link{{rel: "next", query: q}}
		items = items[:per]
	}
	rep.body = render(items)
	return rep
}

func (s *Server) getProject(c *call) reply {
	p, fail := s.findProject(c)
	if fail != nil {
		return *fail
	}
	return jsonReply(http.StatusOK, s.projectJSON(p, c.user(), false))
}

func (s *Server) hookJSON(h *hook) map[string]any {
	var until any
	if !h.disabledUntil.IsZero() && h.alertStatus(s.now()) == "temporarily_disabled" {
		until = ts(h.disabledUntil)
	}
	return map[string]any{
		"id": h.id, "url": h.url, "name": "", "description": "", "project_id": h.projectID,
		"push_events": h.push, "push_events_branch_filter": "", "branch_filter_strategy": "wildcard",
		"issues_events": false, "confidential_issues_events": false, "merge_requests_events": h.mergeRequests,
		"tag_push_events": h.tagPush, "note_events": false, "confidential_note_events": false, "job_events": false,
		"pipeline_events": false, "wiki_page_events": false, "deployment_events": false, "releases_events": false,
		"feature_flag_events": false, "repository_update_events": false, "enable_ssl_verification": h.ssl,
		"alert_status": h.alertStatus(s.now()), "disabled_until": until, "url_variables": []any{},
		"created_at": ts(h.created), "resource_access_token_events": false, "custom_webhook_template": "",
		"custom_headers": []any{}, "signing_token_present": h.signing != "",
	}
}

// hookProject finds the project of a hooks request: Maintainer role required.
func (s *Server) hookProject(c *call) (*project, *reply) {
	p, fail := s.findProject(c)
	if fail != nil {
		return nil, fail
	}
	if fail := s.requireLevel(c, p, Maintainer); fail != nil {
		return nil, fail
	}
	return p, nil
}

func (s *Server) findHook(c *call, p *project) (*hook, *reply) {
	id, err := strconv.ParseInt(c.r.PathValue("hook"), 10, 64)
	if err != nil {
		rep := jsonReply(http.StatusBadRequest, map[string]any{"error": "hook_id is invalid"})
		return nil, &rep
	}
	for _, h := range p.hooks {
		if h.id == id {
			return h, nil
		}
	}
	rep := message(http.StatusNotFound, "404 Not Found")
	return nil, &rep
}

func (s *Server) listHooks(c *call) reply {
	p, fail := s.hookProject(c)
	if fail != nil {
		return *fail
	}
	items, info, links := offsetPage(c, p.hooks)
	out := make([]map[string]any, 0, len(items))
	for _, h := range items {
		out = append(out, s.hookJSON(h))
	}
	return reply{status: http.StatusOK, body: out, page: info, links: links}
}

func (s *Server) getHook(c *call) reply {
	p, fail := s.hookProject(c)
	if fail != nil {
		return *fail
	}
	h, fail := s.findHook(c, p)
	if fail != nil {
		return *fail
	}
	return jsonReply(http.StatusOK, s.hookJSON(h))
}

// isLocal reports whether a host is localhost or an address of a private, loopback or
// link-local network: what GitLab's outbound-request settings refuse by default.
func isLocal(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
}

// validHookURL is GitLab's URL validation of a webhook (with the default outbound-request
// settings unless AllowLocalRequests); the project hooks API reports any failure as "Invalid
// url given".
func (s *Server) validHookURL(raw string) *reply {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(!s.opts.AllowLocalRequests && isLocal(u.Hostname())) {
		rep := message(http.StatusUnprocessableEntity, "Invalid url given")
		return &rep
	}
	return nil
}

// applyHookParams sets the parameters a create or update carries on h.
func (s *Server) applyHookParams(c *call, h *hook) *reply {
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"push_events", &h.push}, {"tag_push_events", &h.tagPush}, {"merge_requests_events", &h.mergeRequests}, {"enable_ssl_verification", &h.ssl}} {
		v, ok, bad := c.boolean(f.name)
		if bad != nil {
			return bad
		}
		if ok {
			*f.dst = v
		}
	}
	if c.has("token") {
		h.token = c.str("token")
	}
	if c.has("signing_token") {
		h.signing = c.str("signing_token")
	}
	return nil
}

func (s *Server) createHook(c *call) reply {
	p, fail := s.hookProject(c)
	if fail != nil {
		return *fail
	}
	raw := c.str("url")
	if raw == "" {
		return missing("url")
	}
	if fail := s.validHookURL(raw); fail != nil {
		return *fail
	}
	// GitLab's defaults: push events on, SSL verification on, everything else off.
	h := &hook{id: s.nextID(), uuid: newUUID(), projectID: p.id, url: raw, push: true, ssl: true, created: s.now()}
	if fail := s.applyHookParams(c, h); fail != nil {
		return *fail
	}
	p.hooks = append(p.hooks, h)
	return jsonReply(http.StatusCreated, s.hookJSON(h))
}

func (s *Server) updateHook(c *call) reply {
	p, fail := s.hookProject(c)
	if fail != nil {
		return *fail
	}
	h, fail := s.findHook(c, p)
	if fail != nil {
		return *fail
	}
	raw := c.str("url")
	if raw == "" {
		return missing("url")
	}
	if fail := s.validHookURL(raw); fail != nil {
		return *fail
	}
	next := *h
	if raw != h.url {
		next.url, next.token = raw, "" // a new URL forgets the secret token
	}
	if fail := s.applyHookParams(c, &next); fail != nil {
		return *fail
	}
	*h = next
	return jsonReply(http.StatusOK, s.hookJSON(h))
}

func (s *Server) deleteHook(c *call) reply {
	p, fail := s.hookProject(c)
	if fail != nil {
		return *fail
	}
	h, fail := s.findHook(c, p)
	if fail != nil {
		return *fail
	}
	p.hooks = slices.DeleteFunc(p.hooks, func(x *hook) bool { return x == h })
	return reply{status: http.StatusNoContent}
}

// branchJSON is a branch as the branches API shows it.
func (s *Server) branchJSON(c *call, p *project, b gitRef) map[string]any {
	web := s.URL + "/" + p.fullPath()
	short := b.sha[:min(8, len(b.sha))]
	return map[string]any{
		"name": b.name, "merged": false, "protected": b.name == p.defaultBranch, "default": b.name == p.defaultBranch,
		"developers_can_push": false, "developers_can_merge": false, "can_push": s.levelLocked(c.user(), p) >= Developer,
		"web_url": web + "/-/tree/" + b.name,
		"commit": map[string]any{
			"id": b.sha, "short_id": short, "title": b.subject, "message": b.message, "parent_ids": []string{},
			"author_name": b.authorName, "author_email": b.authorEmail, "authored_date": b.date,
			"committer_name": b.authorName, "committer_email": b.authorEmail, "committed_date": b.date, "created_at": b.date,
			"trailers": map[string]any{}, "extended_trailers": map[string]any{}, "web_url": web + "/-/commit/" + b.sha,
		},
	}
}

func (s *Server) listBranches(c *call) reply {
	p, fail := s.findProject(c)
	if fail != nil {
		return *fail
	}
	if !s.canReadCodeLocked(c.user(), p) {
		return forbidden()
	}
	refs, err := s.branchesLocked(p)
	if err != nil {
		s.t.Errorf("gitlabfake: list branches of %s: %v", p.fullPath(), err)
		return message(http.StatusInternalServerError, "500 Internal Server Error")
	}
	items, info, links := offsetPage(c, refs)
	out := make([]map[string]any, 0, len(items))
	for _, b := range items {
		out = append(out, s.branchJSON(c, p, b))
	}
	return reply{status: http.StatusOK, body: out, page: info, links: links}
}

func (s *Server) createBranch(c *call) reply {
	p, fail := s.findProject(c)
	if fail != nil {
		return *fail
	}
	if fail := s.requireLevel(c, p, Developer); fail != nil {
		return *fail
	}
	name, ref := c.str("branch"), c.str("ref")
	switch {
	case name == "":
		return missing("branch")
	case ref == "":
		return missing("ref")
	case !validBranchName(name):
		return message(http.StatusBadRequest, "Branch name is invalid")
	}
	refs, err := s.branchesLocked(p)
	if err != nil {
		s.t.Errorf("gitlabfake: list branches of %s: %v", p.fullPath(), err)
		return message(http.StatusInternalServerError, "500 Internal Server Error")
	}
	for _, b := range refs {
		if b.name == name {
			return message(http.StatusBadRequest, "Branch already exists")
		}
	}
	sha, ok := s.resolveLocked(p, refs, ref)
	if !ok {
		return message(http.StatusBadRequest, "Invalid reference name: "+ref)
	}
	if err := s.setBranchLocked(p, name, sha); err != nil {
		s.t.Errorf("gitlabfake: create branch %s on %s: %v", name, p.fullPath(), err)
		return message(http.StatusInternalServerError, "500 Internal Server Error")
	}
	// Creating a branch through the API sends the push event, as a push creating it does.
	s.deliverRefChangeLocked(p, c.user(), refUpdate{ref: "refs/heads/" + name, newSHA: sha})
	refs, _ = s.branchesLocked(p)
	for _, b := range refs {
		if b.name == name {
			return jsonReply(http.StatusCreated, s.branchJSON(c, p, b))
		}
	}
	return message(http.StatusInternalServerError, "500 Internal Server Error")
}

// validBranchName is a sketch of git's check-ref-format for a branch name.
func validBranchName(n string) bool {
	if n == "" || strings.HasPrefix(n, "-") || strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") ||
		strings.HasSuffix(n, ".lock") || strings.HasSuffix(n, ".") || strings.Contains(n, "..") || strings.Contains(n, "//") ||
		strings.Contains(n, "@{") || n == "HEAD" {
		return false
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	return true
}

func (s *Server) mergeRequestJSON(p *project, m *mergeRequest) map[string]any {
	web := s.URL + "/" + p.fullPath()
	draft := isDraft(m.title)
	author := s.userJSON(m.author)
	return map[string]any{
		"id": m.id, "iid": m.iid, "project_id": p.id, "title": m.title, "description": m.description,
		"state": m.state, "created_at": ts(m.created), "updated_at": ts(m.created), "merged_by": nil, "merge_user": nil,
		"merged_at": nil, "closed_by": nil, "closed_at": nil, "target_branch": m.target, "source_branch": m.source,
		"user_notes_count": 0, "upvotes": 0, "downvotes": 0, "author": author, "assignees": []any{}, "assignee": nil,
		"reviewers": []any{}, "source_project_id": p.id, "target_project_id": p.id, "labels": []string{},
		"draft": draft, "work_in_progress": draft, "milestone": nil, "merge_when_pipeline_succeeds": false,
		"merge_status": "checking", "detailed_merge_status": "checking", "sha": m.sha, "merge_commit_sha": nil,
		"squash_commit_sha": nil, "discussion_locked": nil, "should_remove_source_branch": nil,
		"force_remove_source_branch": false, "prepared_at": ts(m.created), "reference": fmt.Sprintf("!%d", m.iid),
		"references": map[string]string{"short": fmt.Sprintf("!%d", m.iid), "relative": fmt.Sprintf("!%d", m.iid), "full": fmt.Sprintf("%s!%d", p.fullPath(), m.iid)},
		"web_url":    fmt.Sprintf("%s/-/merge_requests/%d", web, m.iid),
		"time_stats": map[string]any{"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": nil, "human_total_time_spent": nil},
		"squash":     false, "squash_on_merge": false, "task_completion_status": map[string]int{"count": 0, "completed_count": 0},
		"has_conflicts": false, "blocking_discussions_resolved": true, "subscribed": true, "changes_count": nil,
		"diff_refs": nil, "first_contribution": false, "user": map[string]bool{"can_merge": true},
	}
}

// isDraft reports whether GitLab reads a title as a draft's.
func isDraft(title string) bool {
	t := strings.ToLower(strings.TrimSpace(title))
	return strings.HasPrefix(t, "draft:") || strings.HasPrefix(t, "[draft]") || strings.HasPrefix(t, "(draft)")
}

func (s *Server) createMergeRequest(c *call) reply {
	p, fail := s.findProject(c)
	if fail != nil {
		return *fail
	}
	if fail := s.requireLevel(c, p, Developer); fail != nil {
		return *fail
	}
	source, target, title := c.str("source_branch"), c.str("target_branch"), c.str("title")
	for _, req := range []struct{ name, v string }{{"source_branch", source}, {"target_branch", target}, {"title", title}} {
		if req.v == "" {
			return missing(req.name)
		}
	}
	if source == target {
		return message(http.StatusUnprocessableEntity, []string{"You can't use same project/branch for source and target"})
	}
	refs, err := s.branchesLocked(p)
	if err != nil {
		s.t.Errorf("gitlabfake: list branches of %s: %v", p.fullPath(), err)
		return message(http.StatusInternalServerError, "500 Internal Server Error")
	}
	heads := map[string]string{}
	for _, b := range refs {
		heads[b.name] = b.sha
	}
	for _, br := range []struct{ side, name string }{{"Source", source}, {"Target", target}} {
		if _, ok := heads[br.name]; !ok {
			return message(http.StatusUnprocessableEntity, []string{fmt.Sprintf("%s branch %q does not exist", br.side, br.name)})
		}
	}
	for _, m := range p.mrs {
		if m.state == "opened" && m.source == source && m.target == target {
			return message(http.StatusConflict, []string{fmt.Sprintf("Another open merge request already exists for this source branch: !%d", m.iid)})
		}
	}
	m := &mergeRequest{id: s.nextID(), iid: int64(len(p.mrs) + 1), title: title, description: c.str("description"),
		state: "opened", source: source, target: target, sha: heads[source], author: c.user(), created: s.now()}
	p.mrs = append(p.mrs, m)
	s.deliverMergeRequestLocked(p, m, c.user(), "open")
	return jsonReply(http.StatusCreated, s.mergeRequestJSON(p, m))
}
