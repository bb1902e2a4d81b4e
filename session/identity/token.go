package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-gw/airlock/protocols"
)

// TokenPrefix starts every token GenerateToken makes, so that secret
// scanners and people can recognise an Airlock token.
const TokenPrefix = "airlock_"

// HashToken returns the hex SHA-256 of token, the form a static identity's
// token_sha256 takes in the configuration.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// GenerateToken returns a new random token: TokenPrefix and 256 bits from
// crypto/rand in unpadded base64url. It is never shaped like a JWT.
func GenerateToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// tokenStore holds the static identities, their tokens only as SHA-256.
type tokenStore struct {
	byName map[string]int
	ids    []protocols.Identity
	hashes [][sha256.Size]byte
	// dummy is a random hash no token matches. A lookup for an unknown
	// name compares against it, so that it costs what a known name costs.
	dummy [sha256.Size]byte
}

func newTokenStore(list []Static) (*tokenStore, error) {
	s := &tokenStore{byName: make(map[string]int, len(list))}
	if _, err := rand.Read(s.dummy[:]); err != nil {
		return nil, fmt.Errorf("generate dummy hash: %w", err)
	}
	for i, st := range list {
		raw, err := hex.DecodeString(strings.TrimSpace(st.TokenSHA256))
		if err != nil || len(raw) != sha256.Size {
			// Validate reports the details; this only guards New.
			return nil, fmt.Errorf("identities[%d].token_sha256: not a hex SHA-256", i)
		}
		s.byName[st.Name] = i
		s.ids = append(s.ids, protocols.Identity{Name: st.Name, Groups: slices.Clone(st.Groups), Method: "token"})
		s.hashes = append(s.hashes, [sha256.Size]byte(raw))
	}
	return s, nil
}

// lookup returns the identity named name whose token is secret. Its running
// time does not depend on whether name exists or how much of the hash
// matched.
func (s *tokenStore) lookup(name, secret string) (protocols.Identity, bool) {
	h := sha256.Sum256([]byte(secret))
	want := &s.dummy
	i, known := s.byName[name]
	if known {
		want = &s.hashes[i]
	}
	eq := subtle.ConstantTimeCompare(h[:], want[:])
	if eq != 1 || !known {
		return protocols.Identity{}, false
	}
	return cloneIdentity(s.ids[i]), true
}

// prove returns the identity named name when verify accepts the hash of
// its token. An unknown name is verified against the dummy hash, so the
// call costs the same either way.
func (s *tokenStore) prove(name string, verify func([sha256.Size]byte) bool) (protocols.Identity, bool) {
	want := s.dummy
	i, known := s.byName[name]
	if known {
		want = s.hashes[i]
	}
	if !verify(want) || !known {
		return protocols.Identity{}, false
	}
	return cloneIdentity(s.ids[i]), true
}

// find returns the identity whose token is secret, for callers that give no
// name (HTTP bearer tokens). It compares against every identity and selects
// the match without a branch, so the time taken says nothing about which
// identity matched or whether any did.
func (s *tokenStore) find(secret string) (protocols.Identity, bool) {
	h := sha256.Sum256([]byte(secret))
	match := 0 // index+1 of the matching identity, 0 for none
	for i := range s.hashes {
		eq := subtle.ConstantTimeCompare(h[:], s.hashes[i][:])
		match = subtle.ConstantTimeSelect(eq, i+1, match)
	}
	if match == 0 {
		return protocols.Identity{}, false
	}
	return cloneIdentity(s.ids[match-1]), true
}

// has reports whether name belongs to a static identity.
func (s *tokenStore) has(name string) bool {
	_, ok := s.byName[name]
	return ok
}

// cloneIdentity copies id's groups, so that no caller can change the
// configured identity through the slice it was handed.
func cloneIdentity(id protocols.Identity) protocols.Identity {
	id.Groups = slices.Clone(id.Groups)
	return id
}
