package main

import (
	"context"
	"fmt"
	"time"

	"github.com/airlock-gw/airlock/approvals"
	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity/sso"
)

// openSSO opens the short-lived credential store in the shared store,
// makes the authenticator accept its credentials on every listener, and
// prepares the sign-in flows for the admin listener.
func (s *server) openSSO(conns map[string]*protocols.Connection) error {
	cfg := s.cfg.SSO.WithDefaults(s.cfg.Approvals.AdminURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := s.log.With("component", "sso")
	m := sso.NewMetrics(s.reg)
	st, err := sso.OpenStore(ctx, s.db, sso.StoreOptions{Grace: cfg.Grace, Poll: cfg.RevocationPoll, Log: log, Metrics: m})
	if err != nil {
		return fmt.Errorf("sso store: %w", err)
	}
	o := sso.Options{Config: cfg, Store: st, Auth: s.adminAuth, IsStatic: s.auth.IsStatic,
		Connections: conns, Listeners: s.cfg.Listen, Log: log, Metrics: m}
	if s.approver != nil {
		o.SignIn = s.approver.SignedIn
	}
	svc, err := sso.New(o)
	if err != nil {
		return err
	}
	s.auth.SetCredentials(st)
	s.sso = svc
	return nil
}

// reviewerSignIn offers the identity providers on the reviewers' page.
func (s *server) reviewerSignIn() approvals.SignIn {
	si := approvals.SignIn{SignOut: s.sso.RevokeToken}
	for _, l := range s.sso.Links() {
		si.Providers = append(si.Providers, approvals.SignInProvider{Name: l.Name, Label: l.Label, Path: l.Path})
	}
	return si
}
