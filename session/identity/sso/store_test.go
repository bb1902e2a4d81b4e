package sso

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// openDB opens a shared store: SQLite in a temporary file, or PostgreSQL.
func openDB(t *testing.T, driver string) *sqldb.DB {
	t.Helper()
	cfg := sqldb.Config{Driver: driver, DSN: protocols.Secret(filepath.Join(t.TempDir(), "airlock.db"))}
	if driver == "postgres" {
		cfg.DSN = protocols.Secret(testenv.PostgresURL(t, testenv.PostgresDB(t)))
	}
	db, err := sqldb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openStore(t *testing.T, db *sqldb.DB, clock clockwork.Clock) *Store {
	t.Helper()
	st, err := OpenStore(context.Background(), db, StoreOptions{Grace: time.Minute, Poll: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var alice = protocols.Identity{Name: "alice@corp", Groups: []string{"idp:reviewers"}, Method: "sso:okta"}

func issue(t *testing.T, st *Store, lifetime time.Duration) (string, Credential) {
	t.Helper()
	secret, c, err := st.Issue(context.Background(), Credential{Identity: alice, Provider: "okta", Purpose: PurposeCLI, Client: "laptop"}, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return secret, c
}

// TestStore runs on both dialects: replicas share PostgreSQL.
func TestStore(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			db := openDB(t, driver)
			t.Run("issue check lease", func(t *testing.T) { testIssueCheck(t, db) })
			t.Run("expiry and grace", func(t *testing.T) { testExpiry(t, db) })
			t.Run("revocation across replicas", func(t *testing.T) { testRevocation(t, db) })
			t.Run("state taken once", func(t *testing.T) { testPending(t, db) })
			t.Run("proof", func(t *testing.T) { testProve(t, db) })
		})
	}
}

func testIssueCheck(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	clock := clockwork.NewFakeClock()
	st := openStore(t, db, clock)
	secret, c := issue(t, st, time.Hour)
	if !identity.IsShortLived(secret) || strings.Contains(c.ID, secret) {
		t.Fatalf("secret %q, id %q", secret[:12], c.ID)
	}
	var hash string
	if err := db.QueryRow(db.Dialect.Rebind(`SELECT token_sha256 FROM airlock_sso_credentials WHERE id = ?`), c.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if hash != hashHex(secret) {
		t.Fatal("the store does not keep the credential as its SHA-256")
	}
	id, valid, err := st.Check(ctx, secret)
	if err != nil || id.Name != alice.Name || id.Method != "sso:okta" || len(id.Groups) != 1 || valid() != nil {
		t.Fatalf("Check = %+v, %v", id, err)
	}
	if st.Lease(secret) == nil || st.Lease("airlock_sso_other") != nil {
		t.Fatal("Lease does not find the checked credential, or finds one never checked")
	}
	// A fresh replica reads it from the store.
	other := openStore(t, db, clock)
	if id, _, err := other.Check(ctx, secret); err != nil || id.Name != alice.Name {
		t.Fatalf("another replica: %+v, %v", id, err)
	}
	tampered := tamper(secret)
	if _, _, err := st.Check(ctx, tampered); !errors.Is(err, identity.ErrUnknownCredential) {
		t.Fatalf("a tampered credential: %v", err)
	}
	got, err := st.Find(ctx, secret)
	if err != nil || got.ID != c.ID || got.Client != "laptop" {
		t.Fatalf("Find = %+v, %v", got, err)
	}
	list, err := st.List(ctx, alice.Name, false)
	if err != nil || len(list) == 0 || list[0].ID != c.ID {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func testExpiry(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	clock := clockwork.NewFakeClock()
	st := openStore(t, db, clock)
	secret, _ := issue(t, st, 10*time.Minute)
	_, valid, err := st.Check(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	if _, _, err := st.Check(ctx, secret); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("a new login at expiry: %v", err)
	}
	if err := valid(); err != nil {
		t.Fatalf("an open session within the grace: %v", err)
	}
	clock.Advance(time.Minute)
	if err := valid(); err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "airlock login") {
		t.Fatalf("an open session past the grace: %v", err)
	}
	if list, _ := st.List(ctx, alice.Name, false); containsSecret(st, list, secret) {
		t.Fatal("an expired credential is listed as active")
	}
}

func containsSecret(st *Store, list []Credential, secret string) bool {
	c, err := st.Find(context.Background(), secret)
	if err != nil {
		return false
	}
	for _, x := range list {
		if x.ID == c.ID {
			return true
		}
	}
	return false
}

func testRevocation(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	clock := clockwork.NewFakeClock()
	a, b := openStore(t, db, clock), openStore(t, db, clock)
	secret, c := issue(t, a, time.Hour)
	_, onA, err := a.Check(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	_, onB, err := b.Check(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Revoke(ctx, c.ID, "security")
	if err != nil || got.RevokedAt == nil || got.RevokedBy != "security" {
		t.Fatalf("Revoke = %+v, %v", got, err)
	}
	if err := onA(); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the revoking replica's session: %v", err)
	}
	if err := onB(); err != nil {
		t.Fatal("the other replica knew before its poll")
	}
	if err := b.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := onB(); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the other replica's session after its poll: %v", err)
	}
	if _, _, err := b.Check(ctx, secret); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a new login with a revoked credential: %v", err)
	}
	if _, err := a.Revoke(ctx, "cred-none", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking an unknown id: %v", err)
	}
}

func testPending(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	clock := clockwork.NewFakeClock()
	a, b := openStore(t, db, clock), openStore(t, db, clock)
	if err := a.put(ctx, "login", "k1", pendingLogin{Provider: "okta"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	var pl pendingLogin
	if err := b.peek(ctx, "login", "k1", &pl); err != nil || pl.Provider != "okta" {
		t.Fatalf("peek = %+v, %v", pl, err)
	}
	if err := b.take(ctx, "exchange", "k1", &pl); !errors.Is(err, ErrStateUnknown) {
		t.Fatalf("taken as another kind: %v", err)
	}
	if err := b.take(ctx, "login", "k1", &pl); err != nil {
		t.Fatal(err)
	}
	if err := a.take(ctx, "login", "k1", &pl); !errors.Is(err, ErrStateUnknown) {
		t.Fatalf("taken twice: %v", err)
	}
	_ = a.put(ctx, "login", "k2", pendingLogin{}, time.Minute)
	clock.Advance(2 * time.Minute)
	if err := a.take(ctx, "login", "k2", &pl); !errors.Is(err, ErrStateUnknown) {
		t.Fatalf("taken after expiry: %v", err)
	}
	until := clock.Now().Add(time.Hour)
	if err := a.consume(ctx, "saml-id", "id-1", until); err != nil {
		t.Fatal(err)
	}
	if err := b.consume(ctx, "saml-id", "id-1", until); !errors.Is(err, ErrReplayed) {
		t.Fatalf("an assertion seen twice: %v", err)
	}
}

// tamper changes the last character of s.
func tamper(s string) string {
	if s[len(s)-1] == 'A' {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

// testProve: a proof of a live credential (its SHA-256, as a MySQL
// scramble is checked) admits with the credential's lease; a revoked or
// expired one, another name's or a wrong proof does not, and verify is
// called even for a name without credentials.
func testProve(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	clock := clockwork.NewFakeClock()
	st := openStore(t, db, clock)
	knows := func(secret string) func([32]byte) bool {
		return func(h [32]byte) bool { return h == sha256.Sum256([]byte(secret)) }
	}
	old, _ := issue(t, st, time.Minute)
	secret, c := issue(t, st, time.Hour)
	id, valid, err := st.Prove(ctx, alice.Name, knows(secret))
	if err != nil || id.Name != alice.Name || id.Method != "sso:okta" || valid == nil || valid() != nil {
		t.Fatalf("Prove = %+v, %v", id, err)
	}
	if _, _, err := st.Prove(ctx, alice.Name, knows(old)); err != nil {
		t.Fatalf("the older live credential: %v", err)
	}
	calls := 0
	for _, tc := range []struct {
		name   string
		verify func([32]byte) bool
	}{
		{alice.Name, knows(tamper(secret))},
		{"bob@corp", knows(secret)},
		{"nobody", func(h [32]byte) bool { calls++; return false }},
	} {
		if _, _, err := st.Prove(ctx, tc.name, tc.verify); !errors.Is(err, identity.ErrUnknownCredential) {
			t.Errorf("Prove(%s) = %v, want ErrUnknownCredential", tc.name, err)
		}
	}
	if calls != 1 {
		t.Errorf("verify called %d times for a name without credentials, want 1", calls)
	}
	clock.Advance(2 * time.Minute)
	if _, _, err := st.Prove(ctx, alice.Name, knows(old)); !errors.Is(err, identity.ErrUnknownCredential) {
		t.Errorf("an expired credential: %v", err)
	}
	if _, err := st.Revoke(ctx, c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if valid() == nil {
		t.Error("the lease of a proved credential outlived its revocation")
	}
	if _, _, err := st.Prove(ctx, alice.Name, knows(secret)); !errors.Is(err, identity.ErrUnknownCredential) {
		t.Errorf("a revoked credential: %v", err)
	}
}
