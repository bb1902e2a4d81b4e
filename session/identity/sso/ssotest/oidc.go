package ssotest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a person the identity providers know.
type User struct {
	Name     string // the OIDC preferred_username, the SAML email (NameID)
	Password string
	Groups   []string
}

// Client is an OIDC client registration.
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// OIDC is a running OpenID provider.
type OIDC struct {
	// Issuer is the provider's URL, its discovery document at
	// Issuer + /.well-known/openid-configuration.
	Issuer string
	srv    *httptest.Server
}

// NewOIDC starts an OpenID provider on loopback with users and clients.
// Every client may use the code flow (with PKCE) and the device flow, and
// its ID tokens carry the profile and a groups claim.
func NewOIDC(t testing.TB, users []User, clients ...Client) *OIDC {
	t.Helper()
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	us := userStore{}
	groups := map[string][]string{}
	for i, u := range users {
		id := "user" + string(rune('1'+i))
		us[id] = &storage.User{ID: id, Username: u.Name, Password: u.Password, FirstName: u.Name, LastName: "Test",
			Email: u.Name, EmailVerified: true, PreferredLanguage: language.English}
		groups[id], groups[u.Name] = u.Groups, u.Groups
	}
	cs := map[string]*storage.Client{}
	for _, c := range clients {
		cs[c.ID] = storage.WebClient(c.ID, c.Secret, c.RedirectURIs...)
	}
	st := &store{Storage: storage.NewStorageWithClients(us, cs), users: us, groups: groups}
	var h http.Handler = exampleop.SetupServer(srv.URL, st, nil, false)
	handler.Store(&h)
	return &OIDC{Issuer: srv.URL, srv: srv}
}

// userStore finds users by id and by name: the example's device flow
// names the subject by the user name.
type userStore map[string]*storage.User

func (u userStore) GetUserByID(id string) *storage.User {
	if x := u[id]; x != nil {
		return x
	}
	return u.GetUserByUsername(id)
}

func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return storage.ServiceUserID }

// store adds device grants and group claims to the example storage.
type store struct {
	*storage.Storage
	users  userStore
	groups map[string][]string
}

func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return client{c}, nil
}

func (s *store) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	s.addGroups(ui, req.GetSubject())
	return nil
}

func (s *store) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, subject)
	return nil
}

func (s *store) addGroups(ui *oidc.UserInfo, subject string) {
	if g := s.groups[subject]; len(g) > 0 {
		ui.AppendClaims("groups", slices.Clone(g))
	}
}

// client lets a web client use the device flow too and puts the profile
// in its ID tokens.
type client struct{ op.Client }

func (c client) GrantTypes() []oidc.GrantType {
	return append(c.Client.GrantTypes(), oidc.GrantTypeDeviceCode)
}

func (client) IDTokenUserinfoClaimsAssertion() bool { return true }
