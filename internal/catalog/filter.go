package catalog

import (
	"fmt"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/util"

	"github.com/forgeway/forgeway/internal/store"
)

// Filter is an integration's compiled repository filter: a JMESPath expression evaluated on
// the View of each repository. A repository matches when the result is truthy in JMESPath's
// sense (not false, null, or an empty string, array or object). The empty expression matches
// every repository.
type Filter struct {
	expr string
	jp   jmespath.JMESPath
}

// CompileFilter parses a filter expression; a syntax error is returned with the parser's own
// message and position.
func CompileFilter(expr string) (*Filter, error) {
	if expr == "" {
		return &Filter{}, nil
	}
	jp, err := jmespath.Compile(expr)
	if err != nil {
		if se, ok := err.(jmespath.SyntaxError); ok {
			return nil, fmt.Errorf("invalid filter %q: %s (at offset %d)", expr, se.Error(), se.Offset)
		}
		return nil, fmt.Errorf("invalid filter %q: %w", expr, err)
	}
	// Evaluate once on a sample so that a type error (calling starts_with on a number) is
	// reported now, not silently on every repository later.
	if _, err := jp.Search(View(store.Repository{FullName: "acme/sample", Name: "sample", Owner: "acme", Group: "acme"})); err != nil {
		return nil, fmt.Errorf("invalid filter %q: %w", expr, err)
	}
	return &Filter{expr: expr, jp: jp}, nil
}

// Expr returns the expression.
func (f *Filter) Expr() string { return f.expr }

// Match evaluates the filter on a repository. An evaluation error counts as no match and is
// returned so it can be shown.
func (f *Filter) Match(r store.Repository) (bool, error) {
	if f == nil || f.jp == nil {
		return true, nil
	}
	v, err := f.jp.Search(View(r))
	if err != nil {
		return false, fmt.Errorf("evaluate filter on %s: %w", r.FullName, err)
	}
	return !util.IsFalse(v), nil
}

// View is the documented JSON view of a repository that filters are evaluated on (see
// docs/filters.md). Its keys are stable API.
func View(r store.Repository) map[string]any {
	return map[string]any{
		"id":             r.HostID,
		"full_name":      r.FullName,
		"name":           r.Name,
		"owner":          r.Owner,
		"group":          r.Group,
		"default_branch": r.DefaultBranch,
		"visibility":     r.Visibility,
		"private":        r.Private,
		"archived":       r.Archived,
		"fork":           r.Fork,
		"description":    r.Description,
		"permission":     r.Permission,
		"installation":   r.Installation,
		"clone_url":      r.CloneURL,
		"web_url":        r.WebURL,
	}
}
