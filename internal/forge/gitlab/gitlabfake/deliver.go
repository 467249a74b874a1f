package gitlabfake

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/forgeway/forgeway/internal/forge/gitlab/glwebhook"
)

const zeroSHA = "0000000000000000000000000000000000000000"

// hookProjectLocked is the "project" object of webhook payloads.
func (s *Server) hookProjectLocked(p *project) map[string]any {
	web := s.URL + "/" + p.fullPath()
	host := strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	ssh := "git@" + host + ":" + p.fullPath() + ".git"
	return map[string]any{
		"id": p.id, "name": p.name, "description": p.description, "web_url": web, "avatar_url": nil,
		"git_ssh_url": ssh, "git_http_url": web + ".git", "namespace": p.ns.name,
		"visibility_level": visibilityLevel(p.visibility), "path_with_namespace": p.fullPath(),
		"default_branch": p.defaultBranch, "ci_config_path": nil, "homepage": web, "url": ssh, "ssh_url": ssh,
		"http_url": web + ".git",
	}
}

// hookRepositoryLocked is the deprecated "repository" object GitLab still sends.
func (s *Server) hookRepositoryLocked(p *project) map[string]any {
	web := s.URL + "/" + p.fullPath()
	host := strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
	ssh := "git@" + host + ":" + p.fullPath() + ".git"
	return map[string]any{
		"name": p.name, "url": ssh, "description": p.description, "homepage": web,
		"git_http_url": web + ".git", "git_ssh_url": ssh, "visibility_level": visibilityLevel(p.visibility),
	}
}

func orZero(sha string) string {
	if sha == "" {
		return zeroSHA
	}
	return sha
}

// deliverRefChangeLocked sends the push (or tag push) event of one ref change, by u, to the
// project's hooks that want it.
func (s *Server) deliverRefChangeLocked(p *project, u *user, up refUpdate) {
	kind, event := "push", "Push Hook"
	switch {
	case strings.HasPrefix(up.ref, "refs/tags/"):
		kind, event = "tag_push", "Tag Push Hook"
	case !strings.HasPrefix(up.ref, "refs/heads/"):
		return // merge request refs, notes: no hook
	}
	commits, total, err := s.pushCommitsLocked(p, up)
	if err != nil {
		s.t.Errorf("gitlabfake: list the commits of a push to %s: %v", p.fullPath(), err)
		return
	}
	web := s.URL + "/" + p.fullPath()
	list := make([]map[string]any, 0, len(commits))
	for _, c := range commits {
		title, _, _ := strings.Cut(c.message, "\n")
		list = append(list, map[string]any{
			"id": c.id, "message": c.message, "title": title, "timestamp": c.timestamp,
			"url": web + "/-/commit/" + c.id, "author": map[string]string{"name": c.authorName, "email": c.authorEmail},
			"added": c.added, "modified": c.modified, "removed": c.removed,
		})
	}
	var checkout any
	if up.newSHA != "" {
		checkout = up.newSHA
	}
	payload := map[string]any{
		"object_kind": kind, "event_name": kind, "before": orZero(up.oldSHA), "after": orZero(up.newSHA), "ref": up.ref,
		"ref_protected": up.ref == "refs/heads/"+p.defaultBranch, "checkout_sha": checkout, "message": nil,
		"project_id": p.id, "project": s.hookProjectLocked(p), "commits": list, "total_commits_count": total,
		"push_options": map[string]any{}, "repository": s.hookRepositoryLocked(p),
	}
	if u != nil {
		payload["user_id"], payload["user_name"], payload["user_username"] = u.id, u.name, u.username
		payload["user_email"], payload["user_avatar"] = u.email, nil
	}
	body, err := json.Marshal(payload)
	if err != nil {
		s.t.Errorf("gitlabfake: encode a push event: %v", err)
		return
	}
	s.dispatchLocked(p, event, body, func(h *hook) bool {
		if kind == "tag_push" {
			return h.tagPush
		}
		return h.push
	})
}

// deliverMergeRequestLocked sends a merge request event with action to the project's hooks
// that want merge request events.
func (s *Server) deliverMergeRequestLocked(p *project, m *mergeRequest, u *user, action string) {
	proj := s.hookProjectLocked(p)
	web := s.URL + "/" + p.fullPath()
	draft := isDraft(m.title)
	lastCommit := map[string]any{"id": m.sha, "url": web + "/-/commit/" + m.sha}
	if cs, err := gitCommitsOf(p, m.sha); err == nil && len(cs) == 1 {
		title, _, _ := strings.Cut(cs[0].message, "\n")
		lastCommit = map[string]any{"id": m.sha, "message": cs[0].message, "title": title, "timestamp": cs[0].timestamp,
			"url": web + "/-/commit/" + m.sha, "author": map[string]string{"name": cs[0].authorName, "email": cs[0].authorEmail}}
	}
	attrs := map[string]any{
		"id": m.id, "iid": m.iid, "target_branch": m.target, "source_branch": m.source, "source_project_id": p.id,
		"author_id": m.author.id, "assignee_ids": []int64{}, "assignee_id": nil, "reviewer_ids": []int64{},
		"title": m.title, "created_at": tsHook(m.created), "updated_at": tsHook(m.created), "last_edited_at": nil,
		"last_edited_by_id": nil, "milestone_id": nil, "state_id": 1, "state": m.state, "blocking_discussions_resolved": true,
		"work_in_progress": draft, "draft": draft, "first_contribution": false, "merge_status": "unchecked",
		"target_project_id": p.id, "description": m.description, "prepared_at": tsHook(m.created),
		"url": fmt.Sprintf("%s/-/merge_requests/%d", web, m.iid), "source": proj, "target": proj,
		"last_commit": lastCommit, "labels": []any{}, "action": action, "detailed_merge_status": "unchecked",
		"merge_commit_sha": nil,
	}
	payload := map[string]any{
		"object_kind": "merge_request", "event_type": "merge_request",
		"user":    map[string]any{"id": u.id, "name": u.name, "username": u.username, "avatar_url": nil, "email": u.email},
		"project": proj, "object_attributes": attrs, "labels": []any{}, "changes": map[string]any{},
		"repository": map[string]any{"name": p.name, "url": proj["url"], "description": p.description, "homepage": web},
	}
	body, err := json.Marshal(payload)
	if err != nil {
		s.t.Errorf("gitlabfake: encode a merge request event: %v", err)
		return
	}
	s.dispatchLocked(p, "Merge Request Hook", body, func(h *hook) bool { return h.mergeRequests })
}

func gitCommitsOf(p *project, sha string) ([]gitCommit, error) {
	if p.gitDir == "" {
		return nil, errors.New("no git repository")
	}
	return gitCommits(p.gitDir, []string{sha})
}

// tsHook formats a time as webhook payloads do.
func tsHook(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// pending is one delivery to send: a copy of what the hook says at the time of the event.
type pending struct {
	hookID  int64
	uuid    string
	url     string
	token   string
	signing string
	ssl     bool
}

// dispatchLocked starts sending body to every executable hook of p that wants it. GitLab
// sends hooks from a background queue, so this does not wait for them (see Flush).
func (s *Server) dispatchLocked(p *project, event string, body []byte, wants func(*hook) bool) {
	for _, h := range p.hooks {
		if !wants(h) || h.alertStatus(s.now()) != "executable" {
			continue
		}
		pd := pending{hookID: h.id, uuid: h.uuid, url: h.url, token: h.token, signing: h.signing, ssl: h.ssl}
		s.sending.Add(1)
		go s.send(p.id, pd, event, body)
	}
}

// send POSTs one delivery with GitLab's headers and records its outcome on the hook: a 2xx
// re-enables it, anything else counts as a failure.
func (s *Server) send(projectID int64, pd pending, event string, body []byte) {
	defer s.sending.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	d := Delivery{HookID: pd.hookID, URL: pd.url, Event: event, ID: newUUID(), Body: body}
	d.Status, d.Err = s.post(ctx, pd, event, d.ID, body)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
	if p, ok := s.projects[projectID]; ok {
		for _, h := range p.hooks {
			if h.id != pd.hookID {
				continue
			}
			if d.Err == nil && d.Status >= 200 && d.Status <= 299 {
				h.enable()
			} else {
				h.backoff(s.now())
			}
		}
	}
}

func (s *Server) post(ctx context.Context, pd pending, event, id string, body []byte) (int, error) {
	u, err := url.Parse(pd.url)
	if err != nil {
		return 0, fmt.Errorf("hook URL: %w", err)
	}
	if !s.opts.AllowLocalRequests && isLocal(u.Hostname()) {
		return 0, errors.New("URL is blocked: Requests to the local network are not allowed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pd.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build delivery: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitLab/"+s.opts.Version)
	h.Set(glwebhook.HeaderEvent, event)
	h.Set(glwebhook.HeaderWebhookUUID, pd.uuid)
	h.Set(glwebhook.HeaderInstance, s.URL)
	h.Set(glwebhook.HeaderEventUUID, newUUID())
	h.Set(glwebhook.HeaderIdempotencyKey, id)
	if err := glwebhook.Authenticate(h, pd.token, pd.signing, id, s.now(), body); err != nil {
		return 0, fmt.Errorf("sign delivery: %w", err)
	}
	client := s.opts.DeliveryClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: !pd.ssl} //nolint:gosec // the hook's enable_ssl_verification is false
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
