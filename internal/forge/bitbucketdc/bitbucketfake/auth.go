package bitbucketfake

import (
	"net/http"
	"strings"
)

// principal is who a request authenticated as: nobody (anonymous), or a token's user.
type principal struct {
	user *user
	tok  *token
}

func (p principal) anonymous() bool { return p.tok == nil }

// Bitbucket's error for a credential it refuses, whatever the reason (wrong, expired,
// revoked): it does not say which.
func badCredentials() reply {
	return errReply(http.StatusUnauthorized, "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
		"Authentication failed. Please check your credentials and try again.")
}

// notPermitted is Bitbucket's answer to a valid credential lacking a permission: a 401 too.
func notPermitted() reply {
	return errReply(http.StatusUnauthorized, "com.atlassian.bitbucket.AuthorisationException",
		"You are not permitted to access this resource")
}

// authenticate reads the request's credential: "Bearer <token>" (any HTTP access token), or
// Basic with a user's login and one of their personal tokens as the password. No credential
// is anonymous; a credential Bitbucket does not accept is refused even where anonymous access
// would do.
func (s *Server) authenticate(r *http.Request) (principal, *reply) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return principal{}, nil
	}
	var value, login string
	if v, ok := strings.CutPrefix(h, "Bearer "); ok {
		value = strings.TrimSpace(v)
	} else if u, pw, ok := r.BasicAuth(); ok {
		value, login = pw, u
	} else {
		rep := badCredentials()
		return principal{}, &rep
	}
	tok, ok := s.tokens[value]
	if !ok || tok.revoked || (!tok.expires.IsZero() && !s.now().Before(tok.expires)) ||
		(login != "" && (tok.kind != tokenPersonal || !strings.EqualFold(tok.user.name, login))) {
		rep := badCredentials()
		return principal{}, &rep
	}
	return principal{user: tok.user, tok: tok}, nil
}

// perm is what p may do on r explicitly: the token's permissions, capped for a personal token
// by what its owner may do. Public repositories are readable beyond this (see readable).
func (s *Server) perm(p principal, r *repo) perm {
	tok := p.tok
	if tok == nil {
		return permNone
	}
	switch tok.kind {
	case tokenProject:
		if r.project != tok.project {
			return permNone
		}
		return max(tok.projectPerm, tok.repoPerm)
	case tokenRepository:
		if r != tok.repo {
			return permNone
		}
		return tok.repoPerm
	case tokenPersonal:
		name := strings.ToLower(tok.user.name)
		own := max(r.project.grants[name], r.grants[name])
		if r.project.personal == tok.user {
			own = permAdmin
		}
		return min(max(tok.projectPerm, tok.repoPerm), own)
	}
	return permNone
}

// readable is Bitbucket's implicit read: an explicit permission, or a public repository (or
// one in a public project).
func (s *Server) readable(p principal, r *repo) bool {
	return s.perm(p, r) >= permRead || r.public || r.project.public
}
