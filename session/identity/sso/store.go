package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/identity"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// Credential purposes.
const (
	PurposeCLI = "cli" // airlock login
	PurposeWeb = "web" // the reviewers' page
)

// Credential describes an issued short-lived credential; never its secret.
type Credential struct {
	ID        string             `json:"id"`
	Identity  protocols.Identity `json:"identity"`
	Provider  string             `json:"provider"`
	Purpose   string             `json:"purpose"`
	Client    string             `json:"client,omitempty"`
	CreatedAt time.Time          `json:"created_at"`
	ExpiresAt time.Time          `json:"expires_at"`
	RevokedAt *time.Time         `json:"revoked_at,omitempty"`
	RevokedBy string             `json:"revoked_by,omitempty"`
}

// Errors of the store.
var (
	// ErrNotFound: no credential has that id.
	ErrNotFound = errors.New("no such credential")
	// ErrStateUnknown: a sign-in's state, code or handle is unknown,
	// expired or was used already.
	ErrStateUnknown = errors.New("sign-in state unknown, expired or already used")
	// ErrReplayed: a SAML assertion was presented a second time.
	ErrReplayed = errors.New("assertion already used")
)

// retention is how long ended credentials stay listed before they are
// purged.
const retention = 7 * 24 * time.Hour

const schemaVersion = 1

var schema = []string{
	`CREATE TABLE IF NOT EXISTS airlock_sso_credentials (
		id              TEXT PRIMARY KEY,
		token_sha256    TEXT NOT NULL UNIQUE,
		identity_name   TEXT NOT NULL,
		identity_groups TEXT NOT NULL,
		provider        TEXT NOT NULL,
		purpose         TEXT NOT NULL,
		client          TEXT NOT NULL,
		created_us      BIGINT NOT NULL,
		expires_us      BIGINT NOT NULL,
		revoked_us      BIGINT,
		revoked_by      TEXT
	)`,
	`CREATE INDEX IF NOT EXISTS airlock_sso_credentials_identity ON airlock_sso_credentials (identity_name, expires_us)`,
	`CREATE INDEX IF NOT EXISTS airlock_sso_credentials_expires ON airlock_sso_credentials (expires_us)`,
	// Sign-in state, exchange codes, device codes and seen assertion IDs,
	// by the SHA-256 of their key: each is taken once.
	`CREATE TABLE IF NOT EXISTS airlock_sso_pending (
		key_sha256 TEXT PRIMARY KEY,
		kind       TEXT NOT NULL,
		data       TEXT NOT NULL,
		expires_us BIGINT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS airlock_sso_pending_expires ON airlock_sso_pending (expires_us)`,
	`CREATE TABLE IF NOT EXISTS airlock_sso_schema (version INTEGER NOT NULL)`,
}

// StoreOptions are a Store's collaborators and timings.
type StoreOptions struct {
	// Grace is how long a lease outlives its credential's expiry.
	Grace time.Duration
	// Poll is how often Run reads revocations made elsewhere.
	Poll    time.Duration
	Log     *slog.Logger
	Metrics *Metrics
	// Now replaces the clock in tests.
	Now func() time.Time
}

// Store keeps short-lived credentials and sign-in state in the shared SQL
// store. It implements identity.CredentialStore and is safe for concurrent
// use. Credentials checked once are cached with their lease; Run keeps the
// cache's revocations current.
type Store struct {
	db      *sql.DB
	dialect sqldb.Dialect
	opt     StoreOptions

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]*lease
	byID  map[string]*lease
}

var (
	_ identity.CredentialStore  = (*Store)(nil)
	_ identity.CredentialProver = (*Store)(nil)
)

// OpenStore creates the schema in db if needed. db stays its opener's.
func OpenStore(ctx context.Context, db *sqldb.DB, o StoreOptions) (*Store, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = DefaultRevocationPoll
	}
	// 0x6169_7373 is "aiss": a fixed key for this schema's lock.
	err := sqldb.Migrate(ctx, db.DB, db.Dialect, sqldb.Schema{Name: "sso", LockKey: 1634300787,
		Statements: schema, VersionTable: "airlock_sso_schema", Version: schemaVersion})
	if err != nil {
		return nil, err
	}
	return &Store{db: db.DB, dialect: db.Dialect, opt: o,
		cache: map[[sha256.Size]byte]*lease{}, byID: map[string]*lease{}}, nil
}

// lease is a cached credential; sessions admitted with it hold its valid.
type lease struct {
	id       string
	identity protocols.Identity
	provider string
	expires  time.Time
	graceEnd time.Time
	revoked  atomic.Bool
	now      func() time.Time
}

// valid is the session lease: revocation ends it at once, expiry after
// the grace.
func (l *lease) valid() error {
	if l.revoked.Load() {
		return errRevoked
	}
	if !l.now().Before(l.graceEnd) {
		return fmt.Errorf("the login credential expired at %s; sign in again (airlock login)", l.expires.UTC().Format(time.DateTime+" UTC"))
	}
	return nil
}

var errRevoked = errors.New("the login credential was revoked; sign in again (airlock login)")

// Issue stores a new credential for c.Identity and returns its secret, which
// is shown once and stored only as a hash.
func (s *Store) Issue(ctx context.Context, c Credential, lifetime time.Duration) (string, Credential, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Credential{}, fmt.Errorf("issue credential: %w", err)
	}
	secret := identity.ShortLivedPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	c.ID = "cred-" + randomHex(8)
	c.CreatedAt = s.opt.Now().UTC().Truncate(time.Microsecond)
	c.ExpiresAt = c.CreatedAt.Add(lifetime)
	c.RevokedAt, c.RevokedBy = nil, ""
	groups, err := json.Marshal(nonNil(c.Identity.Groups))
	if err != nil {
		return "", Credential{}, fmt.Errorf("issue credential: %w", err)
	}
	h := sha256.Sum256([]byte(secret))
	_, err = s.db.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_sso_credentials
		(id, token_sha256, identity_name, identity_groups, provider, purpose, client, created_us, expires_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, hex.EncodeToString(h[:]), c.Identity.Name, string(groups), c.Provider, c.Purpose, c.Client,
		c.CreatedAt.UnixMicro(), c.ExpiresAt.UnixMicro())
	if err != nil {
		return "", Credential{}, fmt.Errorf("issue credential: %w", err)
	}
	s.opt.Metrics.issued(c.Provider, c.Purpose)
	return secret, c, nil
}

// Check implements identity.CredentialStore.
func (s *Store) Check(ctx context.Context, secret string) (protocols.Identity, func() error, error) {
	return s.check(ctx, sha256.Sum256([]byte(secret)))
}

// maxProved bounds the live credentials of one name a proof is tried
// against.
const maxProved = 64

// Prove implements identity.CredentialProver: it checks a proof of knowing
// one of name's live credentials (a MySQL caching_sha2_password scramble,
// verified against the SHA-256 the store keeps) and returns that
// credential's identity and lease, as Check does. When name has none,
// verify is still called once, with a hash no credential has.
func (s *Store) Prove(ctx context.Context, name string, verify func(tokenSHA256 [sha256.Size]byte) bool) (protocols.Identity, func() error, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.Rebind(`SELECT token_sha256 FROM airlock_sso_credentials
		WHERE identity_name = ? AND revoked_us IS NULL AND expires_us > ? ORDER BY created_us DESC LIMIT `+fmt.Sprint(maxProved)),
		name, s.opt.Now().UnixMicro())
	if err != nil {
		return protocols.Identity{}, nil, fmt.Errorf("read credentials: %w", err)
	}
	defer rows.Close()
	var hashes [][sha256.Size]byte
	for rows.Next() {
		var hx string
		var h [sha256.Size]byte
		if err := rows.Scan(&hx); err != nil {
			return protocols.Identity{}, nil, fmt.Errorf("read credentials: %w", err)
		}
		if b, err := hex.DecodeString(hx); err == nil && len(b) == len(h) {
			copy(h[:], b)
			hashes = append(hashes, h)
		}
	}
	if err := rows.Err(); err != nil {
		return protocols.Identity{}, nil, fmt.Errorf("read credentials: %w", err)
	}
	if len(hashes) == 0 {
		verify(sha256.Sum256([]byte("airlock: no credential has this hash")))
	}
	for _, h := range hashes {
		if verify(h) {
			return s.check(ctx, h)
		}
	}
	return protocols.Identity{}, nil, identity.ErrUnknownCredential
}

// check is Check of the credential whose SHA-256 is h.
func (s *Store) check(ctx context.Context, h [sha256.Size]byte) (protocols.Identity, func() error, error) {
	s.mu.RLock()
	l := s.cache[h]
	s.mu.RUnlock()
	if l == nil {
		var err error
		if l, err = s.load(ctx, h); err != nil {
			return protocols.Identity{}, nil, err
		}
	}
	switch {
	case l.revoked.Load():
		s.opt.Metrics.checked(l.provider, "revoked")
		return protocols.Identity{}, nil, errRevoked
	case !s.opt.Now().Before(l.expires):
		// New logins end at expiry; only open sessions get the grace.
		s.opt.Metrics.checked(l.provider, "expired")
		return protocols.Identity{}, nil, fmt.Errorf("the login credential expired at %s", l.expires.UTC().Format(time.DateTime+" UTC"))
	}
	s.opt.Metrics.checked(l.provider, "ok")
	id := l.identity
	id.Groups = slices.Clone(id.Groups)
	return id, l.valid, nil
}

// Lease implements identity.CredentialStore.
func (s *Store) Lease(secret string) func() error {
	h := sha256.Sum256([]byte(secret))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.cache[h]; l != nil {
		return l.valid
	}
	return nil
}

// load reads a credential by its hash and caches it while its grace lasts.
func (s *Store) load(ctx context.Context, h [sha256.Size]byte) (*lease, error) {
	row := s.db.QueryRowContext(ctx, s.dialect.Rebind(`SELECT id, identity_name, identity_groups, provider, expires_us, revoked_us
		FROM airlock_sso_credentials WHERE token_sha256 = ?`), hex.EncodeToString(h[:]))
	var (
		l       = &lease{now: s.opt.Now}
		groups  string
		expires int64
		revoked sql.NullInt64
	)
	err := row.Scan(&l.id, &l.identity.Name, &groups, &l.provider, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, identity.ErrUnknownCredential
	}
	if err != nil {
		return nil, fmt.Errorf("read credential: %w", err)
	}
	if err := json.Unmarshal([]byte(groups), &l.identity.Groups); err != nil {
		return nil, fmt.Errorf("read credential %s: groups: %w", l.id, err)
	}
	if len(l.identity.Groups) == 0 {
		l.identity.Groups = nil
	}
	l.identity.Method = "sso:" + l.provider
	l.expires = time.UnixMicro(expires)
	l.graceEnd = l.expires.Add(s.opt.Grace)
	l.revoked.Store(revoked.Valid)
	if !s.opt.Now().Before(l.graceEnd) {
		return l, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if have := s.cache[h]; have != nil {
		return have, nil
	}
	s.cache[h] = l
	s.byID[l.id] = l
	return l, nil
}

// Revoke ends credential id now; by names who did it. Sessions on this
// replica see it on their next command, those on others after the next
// poll.
func (s *Store) Revoke(ctx context.Context, id, by string) (Credential, error) {
	now := s.opt.Now().UTC()
	res, err := s.db.ExecContext(ctx, s.dialect.Rebind(`UPDATE airlock_sso_credentials SET revoked_us = ?, revoked_by = ?
		WHERE id = ? AND revoked_us IS NULL`), now.UnixMicro(), by, id)
	if err != nil {
		return Credential{}, fmt.Errorf("revoke credential: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.markRevoked(id)
	}
	return s.Get(ctx, id)
}

// Find returns the credential whose secret is secret.
func (s *Store) Find(ctx context.Context, secret string) (Credential, error) {
	h := sha256.Sum256([]byte(secret))
	list, err := s.query(ctx, `WHERE token_sha256 = ?`, hex.EncodeToString(h[:]))
	if err != nil {
		return Credential{}, err
	}
	if len(list) == 0 {
		return Credential{}, ErrNotFound
	}
	return list[0], nil
}

// Get returns credential id.
func (s *Store) Get(ctx context.Context, id string) (Credential, error) {
	list, err := s.query(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Credential{}, err
	}
	if len(list) == 0 {
		return Credential{}, ErrNotFound
	}
	return list[0], nil
}

// List returns the credentials of identity name (all when name is empty),
// newest first; ended ones only when ended is set.
func (s *Store) List(ctx context.Context, name string, ended bool) ([]Credential, error) {
	where, args := `WHERE 1 = 1`, []any{}
	if name != "" {
		where += ` AND identity_name = ?`
		args = append(args, name)
	}
	if !ended {
		where += ` AND revoked_us IS NULL AND expires_us > ?`
		args = append(args, s.opt.Now().UnixMicro())
	}
	return s.query(ctx, where+` ORDER BY created_us DESC LIMIT 1000`, args...)
}

func (s *Store) query(ctx context.Context, where string, args ...any) ([]Credential, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.Rebind(`SELECT id, identity_name, identity_groups, provider, purpose, client,
		created_us, expires_us, revoked_us, revoked_by FROM airlock_sso_credentials `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	defer rows.Close()
	var out []Credential
	for rows.Next() {
		var (
			c                Credential
			groups           string
			created, expires int64
			revoked          sql.NullInt64
			revokedBy        sql.NullString
		)
		if err := rows.Scan(&c.ID, &c.Identity.Name, &groups, &c.Provider, &c.Purpose, &c.Client,
			&created, &expires, &revoked, &revokedBy); err != nil {
			return nil, fmt.Errorf("list credentials: %w", err)
		}
		_ = json.Unmarshal([]byte(groups), &c.Identity.Groups)
		if len(c.Identity.Groups) == 0 {
			c.Identity.Groups = nil
		}
		c.Identity.Method = "sso:" + c.Provider
		c.CreatedAt, c.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
		if revoked.Valid {
			t := time.UnixMicro(revoked.Int64).UTC()
			c.RevokedAt, c.RevokedBy = &t, revokedBy.String
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *Store) markRevoked(id string) {
	s.mu.RLock()
	l := s.byID[id]
	s.mu.RUnlock()
	if l != nil {
		l.revoked.Store(true)
	}
}

// Run keeps the cache current until ctx ends: every poll interval it reads
// the revocations other replicas made and drops credentials whose grace has
// passed; now and then it purges ended credentials past retention and
// expired sign-in state.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(s.opt.Poll)
	defer t.Stop()
	lastPurge := time.Time{}
	for {
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			s.opt.Log.Warn("reading credential revocations failed; retrying", "err", err)
		}
		if now := s.opt.Now(); now.Sub(lastPurge) > 10*time.Minute {
			if err := s.purge(ctx, now); err != nil && ctx.Err() == nil {
				s.opt.Log.Warn("purging ended credentials failed", "err", err)
			}
			lastPurge = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sync marks cached credentials revoked elsewhere and evicts those past
// their grace.
func (s *Store) sync(ctx context.Context) error {
	now := s.opt.Now()
	s.mu.Lock()
	for h, l := range s.cache {
		if !now.Before(l.graceEnd) {
			delete(s.cache, h)
			delete(s.byID, l.id)
		}
	}
	n := len(s.cache)
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.Rebind(`SELECT id FROM airlock_sso_credentials
		WHERE revoked_us IS NOT NULL AND expires_us > ?`), now.Add(-s.opt.Grace).UnixMicro())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		s.markRevoked(id)
	}
	return rows.Err()
}

func (s *Store) purge(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.dialect.Rebind(`DELETE FROM airlock_sso_pending WHERE expires_us < ?`), now.UnixMicro()); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.dialect.Rebind(`DELETE FROM airlock_sso_credentials WHERE expires_us < ?`), now.Add(-retention).UnixMicro())
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomString() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
