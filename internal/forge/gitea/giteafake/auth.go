package giteafake

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// credentialOf reads the token a request carries: "token X" or "Bearer X", or HTTP Basic with
// the token as the password, or as the user name with an empty password (or
// "x-oauth-basic"), as Gitea's basic authentication reads it. present is false when the
// request carries no credential at all.
func credentialOf(r *http.Request) (tok string, present bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", false
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "token", "bearer":
		return strings.TrimSpace(rest), true
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "", true
		}
		if pass == "" || pass == "x-oauth-basic" {
			return user, true
		}
		return pass, true
	}
	return "", true
}

// lookupLocked finds a live token, comparing in constant time as a server should.
func (s *Server) lookupLocked(value string) *token {
	var found *token
	for v, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(v), []byte(value)) == 1 && !t.revoked {
			found = t
		}
	}
	return found
}

// authenticateLocked authenticates an API request. A credential that is present but not a
// live token is refused on every route, as Gitea's API authentication does.
func (s *Server) authenticateLocked(r *http.Request) (*token, *reply) {
	value, present := credentialOf(r)
	if !present {
		return nil, nil
	}
	if t := s.lookupLocked(value); t != nil {
		return t, nil
	}
	rep := s.errReply(http.StatusUnauthorized, "invalid username, password or token")
	return nil, &rep
}

// repoOf finds the repository of a request's {owner}/{repo} and checks the caller may do
// need on it (read, write or admin). A private repository the caller may not read is a 404,
// as Gitea hides it; missing rights on a visible one are a 403 with Gitea's message.
func (s *Server) repoOf(c *call, need string) (*repo, string, *reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.names[strings.ToLower(pathValue(c.r, "owner")+"/"+pathValue(c.r, "repo"))]
	if !ok {
		rep := s.notFound()
		return nil, "", &rep
	}
	r := s.repos[id]
	perm := s.permission(c.user, r)
	switch {
	case perm == "":
		rep := s.notFound()
		return nil, "", &rep
	case roles[perm] < roles[need] && need == permAdmin:
		rep := s.errReply(http.StatusForbidden, "user should be an owner or a collaborator with admin write of a repository")
		return nil, "", &rep
	case roles[perm] < roles[need]:
		rep := s.errReply(http.StatusForbidden, "user should have a permission to write to the repository")
		return nil, "", &rep
	}
	return r, perm, nil
}
