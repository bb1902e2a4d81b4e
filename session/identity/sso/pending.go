package sso

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// pendingKey hashes a state key with its kind, so that a key of one kind
// cannot be taken as another.
func pendingKey(kind, key string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// put keeps v as the state of key for ttl.
func (s *Store) put(ctx context.Context, kind, key string, v any, ttl time.Duration) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_sso_pending (key_sha256, kind, data, expires_us) VALUES (?, ?, ?, ?)`),
		pendingKey(kind, key), kind, string(data), s.opt.Now().Add(ttl).UnixMicro())
	if err != nil {
		return fmt.Errorf("keep sign-in state: %w", err)
	}
	return nil
}

// take removes the state of key and decodes it into v: exactly one taker
// succeeds, on any replica.
func (s *Store) take(ctx context.Context, kind, key string, v any) error {
	var (
		data    string
		expires int64
	)
	err := s.db.QueryRowContext(ctx, s.dialect.Rebind(`DELETE FROM airlock_sso_pending WHERE key_sha256 = ? RETURNING data, expires_us`),
		pendingKey(kind, key)).Scan(&data, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrStateUnknown
	}
	if err != nil {
		return fmt.Errorf("read sign-in state: %w", err)
	}
	if !s.opt.Now().Before(time.UnixMicro(expires)) {
		return ErrStateUnknown
	}
	return json.Unmarshal([]byte(data), v)
}

// peek reads the state of key without taking it.
func (s *Store) peek(ctx context.Context, kind, key string, v any) error {
	var (
		data    string
		expires int64
	)
	err := s.db.QueryRowContext(ctx, s.dialect.Rebind(`SELECT data, expires_us FROM airlock_sso_pending WHERE key_sha256 = ?`),
		pendingKey(kind, key)).Scan(&data, &expires)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !s.opt.Now().Before(time.UnixMicro(expires)) {
		return ErrStateUnknown
	}
	if err != nil {
		return fmt.Errorf("read sign-in state: %w", err)
	}
	return json.Unmarshal([]byte(data), v)
}

// consume records that key was seen, until until; a second time it is
// ErrReplayed.
func (s *Store) consume(ctx context.Context, kind, key string, until time.Time) error {
	res, err := s.db.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_sso_pending (key_sha256, kind, data, expires_us)
		VALUES (?, ?, '{}', ?) ON CONFLICT (key_sha256) DO NOTHING`), pendingKey(kind, key), kind, until.UnixMicro())
	if err != nil {
		return fmt.Errorf("record assertion: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return ErrReplayed
	}
	return nil
}
