package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/forgeway/forgeway/internal/forge"
	"github.com/forgeway/forgeway/internal/store"
)

// refreshAhead is how long before expiry a user token is renewed: early, not seconds before
// (x/oauth2's ReuseTokenSource renews only seconds ahead, which fails long git runs).
const refreshAhead = 30 * time.Minute

type sealedUserCred struct {
	Login        string    `json:"login"`
	Token        string    `json:"token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
}

// PutUserCredential stores a person's own credential on an integration, sealed.
func (s *Service) PutUserCredential(ctx context.Context, tx store.Tx, integrationID, user string, c forge.UserCredential) error {
	if c.Token == "" {
		return fmt.Errorf("%w: the credential has no token", ErrInvalid)
	}
	raw, err := json.Marshal(sealedUserCred{Login: c.Login, Token: c.Token, RefreshToken: c.RefreshToken, Expires: c.Expires})
	if err != nil {
		return fmt.Errorf("encode user credential: %w", err)
	}
	enc, err := s.keys.Seal(raw)
	if err != nil {
		return err
	}
	return tx.PutUserCredential(ctx, &store.UserCredential{
		IntegrationID: integrationID, User: user, Login: c.Login, TokenEnc: enc, Expires: c.Expires,
	})
}

// UserCredential returns a person's credential, renewed first when it expires within
// refreshAhead and the host can renew it. store.ErrNotFound when none is set.
func (s *Service) UserCredential(ctx context.Context, rec store.Integration, user string) (*forge.UserCredential, error) {
	sc, err := s.st.GetUserCredential(ctx, rec.ID, user)
	if err != nil {
		return nil, err
	}
	raw, err := s.keys.Open(sc.TokenEnc)
	if err != nil {
		return nil, err
	}
	var v sealedUserCred
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("decode user credential: %w", err)
	}
	cred := &forge.UserCredential{User: user, Login: v.Login, Token: v.Token, RefreshToken: v.RefreshToken, Expires: v.Expires}
	if cred.Expires.IsZero() || s.now().Add(refreshAhead).Before(cred.Expires) {
		return cred, nil
	}
	client, err := s.Client(ctx, rec)
	if err != nil {
		return nil, err
	}
	r, ok := client.(forge.UserTokenRefresher)
	if !ok || cred.RefreshToken == "" {
		if s.now().Before(cred.Expires) {
			return cred, nil
		}
		return nil, fmt.Errorf("the credential of %s expired at %s and cannot be renewed: %w", user, cred.Expires.Format(time.RFC3339), forge.ErrUnauthorized)
	}
	fresh, err := r.RefreshUserToken(ctx, *cred)
	if err != nil {
		if errors.Is(err, forge.ErrUnauthorized) {
			return nil, fmt.Errorf("renew the credential of %s: the host refused the refresh token; the person must authorize again: %w", user, err)
		}
		return nil, fmt.Errorf("renew the credential of %s: %w", user, err)
	}
	fresh.User = user
	if fresh.Login == "" {
		fresh.Login = cred.Login
	}
	if err := s.PutUserCredential(ctx, s.st, rec.ID, user, fresh); err != nil {
		return nil, fmt.Errorf("store renewed credential: %w", err)
	}
	return &fresh, nil
}
