package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/jobs"
	"github.com/forgeway/forgeway/internal/store"
)

// JobRotate sets a rotated webhook secret on the hooks of every attached repository.
const JobRotate = "hooks.rotate"

// RotateJob is the job that follows a webhook secret rotation.
func RotateJob(integrationID string) store.NewJob {
	return store.NewJob{Kind: JobRotate, Args: integrationArgs{integrationID}, UniqueKey: "rotate:" + integrationID, MaxAttempts: 10}
}

// RotationResult is the outcome of a rotation pass, reported as the job's progress.
type RotationResult struct {
	Rotated int `json:"rotated"`
	// Finished is true when every hook has the new secret and the previous one is no longer
	// accepted. False when the host cannot set it (a GitHub App: set it in the App's settings,
	// then finish the rotation by hand).
	Finished bool   `json:"finished"`
	Note     string `json:"note,omitempty"`
}

func (s *Service) runRotate(ctx context.Context, j *jobs.Job) error {
	rec, ok, err := s.jobIntegration(ctx, j)
	if !ok {
		return err
	}
	res, err := s.RotateHooks(ctx, rec)
	_ = j.Progress(ctx, res)
	return hostRetry(err)
}

// RotateHooks sets the integration's current webhook secret on the hooks of its attached
// repositories, and ends the rotation (the previous secret is no longer accepted) when all of
// them have it.
func (s *Service) RotateHooks(ctx context.Context, rec store.Integration) (RotationResult, error) {
	var res RotationResult
	if len(rec.WebhookPrev) == 0 {
		res.Finished = true
		return res, nil
	}
	client, err := s.ints.Client(ctx, rec)
	if err != nil {
		return res, err
	}
	rotator, ok := client.(forge.HookSecretRotator)
	_, secrets, err := s.ints.Open(rec)
	if err != nil {
		return res, err
	}
	spec := s.hookSpec(rec, secrets[0])
	if ok {
		if err := rotator.RotateIntegrationHook(ctx, spec); errors.Is(err, forge.ErrUnsupported) {
			// The integration-wide hook keeps the previous secret until someone changes it on
			// the host; only then may the previous secret stop being accepted.
			res.Note = err.Error()
			return res, nil
		} else if err != nil {
			return res, fmt.Errorf("set the new secret on the integration's hook: %w", err)
		}
	}
	attached := true
	f := store.RepositoryFilter{IntegrationID: rec.ID, Attached: &attached, Page: store.Page{Limit: 500}}
	complete := ok
	for {
		items, next, err := s.st.ListRepositories(ctx, f)
		if err != nil {
			return res, err
		}
		for _, r := range items {
			if !ok {
				break
			}
			hooks, err := rotator.RotateHookSecret(ctx, ToForge(r), spec)
			if errors.Is(err, forge.ErrUnsupported) {
				complete, res.Note = false, err.Error()
				break
			}
			if err != nil {
				return res, fmt.Errorf("set the new secret on %s: %w", r.FullName, err)
			}
			raw, _ := json.Marshal(hooks)
			r.Hooks = raw
			if err := s.st.UpdateRepositoryState(ctx, &r); err != nil {
				return res, err
			}
			res.Rotated++
		}
		if next == "" {
			break
		}
		f.After = next
	}
	if !ok {
		res.Note = "this host's hooks cannot be given a new secret by Forgeway; set it on the host, then finish the rotation"
	}
	if !complete {
		return res, nil
	}
	err = s.st.Tx(ctx, func(tx store.Tx) error {
		cur, err := tx.GetIntegration(ctx, rec.ID)
		if err != nil {
			return err
		}
		if string(cur.WebhookEnc) != string(rec.WebhookEnc) {
			return nil // rotated again meanwhile: that rotation's job finishes it
		}
		cur.WebhookPrev = nil
		return tx.UpdateIntegration(ctx, &cur)
	})
	if err != nil {
		return res, fmt.Errorf("finish the rotation: %w", err)
	}
	s.ints.Forget(rec.ID)
	res.Finished = true
	s.log.Info("webhook secret rotated on the host", "integration", rec.ID, "hooks", res.Rotated, "at", time.Now().UTC())
	return res, nil
}
