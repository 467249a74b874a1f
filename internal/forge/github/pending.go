package github

import (
	"context"
	"fmt"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
)

// errAppPending is what every operation of an integration whose App is not created yet says.
var errAppPending = fmt.Errorf("the GitHub App is not created yet: open the integration's manifest URL "+
	"(forgeway integrations manifest-url ID) and create it on GitHub: %w", forge.ErrUnsupported)

// pendingApp is the client of an integration waiting for the app-manifest flow.
type pendingApp struct{}

func (pendingApp) Diagnose(context.Context) []forge.Check {
	return []forge.Check{{Name: "github app", Detail: "the App has not been created yet",
		Hint: "Open the manifest URL (GET /api/v1/integrations/{id}/github/manifest) in a browser and create the App on GitHub; then install it."}}
}
func (pendingApp) Repositories(context.Context, func([]forge.Repository) error) error {
	return errAppPending
}
func (pendingApp) Repository(context.Context, string, forge.Repository) (forge.Repository, error) {
	return forge.Repository{}, errAppPending
}
func (pendingApp) EnsureHooks(context.Context, forge.Repository, forge.HookSpec) ([]forge.Hook, error) {
	return nil, errAppPending
}
func (pendingApp) RemoveHooks(context.Context, forge.Repository, string) error { return errAppPending }
func (pendingApp) Hooks(context.Context, forge.Repository, string) ([]forge.Hook, error) {
	return nil, errAppPending
}
func (pendingApp) GitAuth(context.Context, forge.Repository, *forge.UserCredential, time.Duration) (forge.GitAuth, error) {
	return forge.GitAuth{}, errAppPending
}
func (pendingApp) CreateBranch(context.Context, forge.Repository, string, string, *forge.UserCredential) (forge.Ref, error) {
	return forge.Ref{}, errAppPending
}
func (pendingApp) Branches(context.Context, forge.Repository) ([]forge.Ref, error) {
	return nil, errAppPending
}
func (pendingApp) CreatePullRequest(context.Context, forge.Repository, forge.NewPullRequest, *forge.UserCredential) (forge.PullRequest, error) {
	return forge.PullRequest{}, errAppPending
}
func (pendingApp) Budget() forge.Budget { return forge.Budget{} }
