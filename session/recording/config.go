package recording

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// Bounds of the configurable block size.
const (
	MinBlockSize = 4 << 10
	MaxBlockSize = 4 << 20
)

// Defaults for fields left empty.
const (
	DefaultDir           = "./data/recordings"
	DefaultFirstRows     = 10
	DefaultFlushInterval = time.Second
	DefaultBlockSize     = 64 << 10
	DefaultPruneInterval = time.Hour
	// MinKeyBytes is the shortest HMAC key accepted.
	MinKeyBytes = 32
)

// SyncMode says when an ended session's recording is fsynced.
type SyncMode string

// Sync modes.
const (
	SyncBatched    SyncMode = "batched"
	SyncSessionEnd SyncMode = "session_end"
)

// Config is the recording section of Airlock's configuration. Zero values
// take the defaults above, except Dir, which is required.
type Config struct {
	// Disabled turns recording off. Sessions then leave no audit trail, so
	// the gateway logs a warning at start; it exists for measurement and
	// for development machines.
	Disabled bool `yaml:"disabled"`
	// Dir holds one file per session, named by session id.
	Dir string `yaml:"dir"`
	// Rows says which result rows are kept: none, first (FirstRows of each
	// result set) or all. Rows are recorded as masked for the caller.
	Rows      RowsMode `yaml:"rows"`
	FirstRows int      `yaml:"first_rows"`
	// HMACKeyEnv names the environment variable holding the key that signs
	// checkpoints and trailers. Empty: recordings are chained but unsigned.
	HMACKeyEnv string `yaml:"hmac_key_env"`
	// FlushInterval bounds how long a recorded frame may wait in memory.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Sync says when an ended session's file is fsynced: "batched"
	// (default) with the other sessions that ended within the same flush
	// interval, so that many short sessions share journal commits and the
	// session's end does not wait for the disk; or "session_end", each file
	// on its own before its end is written to the index.
	Sync SyncMode `yaml:"sync"`
	// Compression is the blocks' codec: s2 (default: about a third of
	// zstd's CPU on the session's path) or zstd (files 1.3 to 1.8 times
	// smaller). `airlock sessions recompress --codec zstd` rewrites finished
	// recordings to zstd for long retention.
	Compression Compression `yaml:"compression"`
	// BlockSize is the uncompressed size at which a block is written.
	BlockSize ByteSize  `yaml:"block_size"`
	Retention Retention `yaml:"retention"`
	// Parameters records the values clients bind to prepared statements,
	// masked like rows (a binary value of a masked caller is withheld: its
	// length only). Off by default: a parameter can hold what no policy
	// sees as a secret, such as a password an application hashes in SQL.
	Parameters bool `yaml:"parameters"`
}

// Retention says when finished recordings are deleted: those older than
// MaxAge, then the oldest until the rest fit in MaxBytes. Zero disables a
// bound. Interval is how often the pruner runs.
type Retention struct {
	MaxAge   time.Duration `yaml:"max_age"`
	MaxBytes ByteSize      `yaml:"max_bytes"`
	Interval time.Duration `yaml:"interval"`
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Rows == "" {
		c.Rows = RowsFirst
	}
	if c.FirstRows == 0 {
		c.FirstRows = DefaultFirstRows
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Sync == "" {
		c.Sync = SyncBatched
	}
	if c.Compression == "" {
		c.Compression = CompressS2
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Retention.Interval == 0 {
		c.Retention.Interval = DefaultPruneInterval
	}
	return c
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem of c, each prefixed with path (the
// section's place in the whole configuration, e.g. "recording"), joined.
// It reads the key's environment variable to check that it is set and long
// enough; the key itself never appears in a message.
func (c Config) Validate(path string) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, field, fmt.Sprintf(format, a...)))
	}
	if c.Dir == "" {
		bad("dir", "missing directory for recordings (e.g. %s)", DefaultDir)
	}
	switch c.Rows {
	case "", RowsNone, RowsFirst, RowsAll:
	default:
		bad("rows", "unknown mode %q (want none, first or all)", c.Rows)
	}
	if c.FirstRows < 0 {
		bad("first_rows", "must not be negative (got %d)", c.FirstRows)
	}
	switch c.Sync {
	case "", SyncBatched, SyncSessionEnd:
	default:
		bad("sync", "unknown mode %q (want batched or session_end)", c.Sync)
	}
	if c.Compression != "" && !c.Compression.known() {
		bad("compression", "unknown codec %q (want zstd or s2)", c.Compression)
	}
	if c.HMACKeyEnv != "" {
		if !envName.MatchString(c.HMACKeyEnv) {
			bad("hmac_key_env", "%q is not an environment variable name", c.HMACKeyEnv)
		} else if _, err := c.Key(); err != nil {
			bad("hmac_key_env", "%v", err)
		}
	}
	if c.FlushInterval != 0 && (c.FlushInterval < 10*time.Millisecond || c.FlushInterval > 10*time.Minute) {
		bad("flush_interval", "%s is out of range (want 10ms to 10m)", c.FlushInterval)
	}
	if c.BlockSize != 0 && (c.BlockSize < MinBlockSize || c.BlockSize > MaxBlockSize) {
		bad("block_size", "%s is out of range (want %s to %s)", c.BlockSize, ByteSize(MinBlockSize), ByteSize(MaxBlockSize))
	}
	if c.Retention.MaxAge < 0 {
		bad("retention.max_age", "must not be negative (got %s)", c.Retention.MaxAge)
	}
	if c.Retention.MaxBytes < 0 {
		bad("retention.max_bytes", "must not be negative")
	}
	if c.Retention.Interval < 0 || (c.Retention.Interval > 0 && c.Retention.Interval < time.Second) {
		bad("retention.interval", "%s is out of range (want at least 1s)", c.Retention.Interval)
	}
	return errors.Join(errs...)
}

// Key returns the HMAC key from the environment variable HMACKeyEnv names,
// nil when none is configured. A set but short or empty key is an error: a
// recording signed with a guessable key would prove nothing.
func (c Config) Key() ([]byte, error) {
	if c.HMACKeyEnv == "" {
		return nil, nil
	}
	v, ok := os.LookupEnv(c.HMACKeyEnv)
	switch {
	case !ok || v == "":
		return nil, fmt.Errorf("environment variable %s is unset or empty", c.HMACKeyEnv)
	case len(v) < MinKeyBytes:
		return nil, fmt.Errorf("key in %s is %d bytes, want at least %d (e.g. openssl rand -hex 32)", c.HMACKeyEnv, len(v), MinKeyBytes)
	}
	return []byte(v), nil
}

// ByteSize is a size in bytes, written with or without a unit.
type ByteSize = protocols.ByteSize
