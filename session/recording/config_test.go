package recording

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const exampleYAML = `
dir: ./data/recordings
rows: first
first_rows: 100
hmac_key_env: AIRLOCK_TEST_RECORDING_KEY
flush_interval: 1s
compression: s2
block_size: 64KiB
retention:
  max_age: 720h
  max_bytes: 10GiB
  interval: 1h
`

func decodeStrict(t *testing.T, s string) (Config, error) {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

func TestConfigExample(t *testing.T) {
	t.Setenv("AIRLOCK_TEST_RECORDING_KEY", strings.Repeat("k", 40))
	c, err := decodeStrict(t, exampleYAML)
	must(t, err)
	want := Config{Dir: "./data/recordings", Rows: RowsFirst, FirstRows: 100, HMACKeyEnv: "AIRLOCK_TEST_RECORDING_KEY",
		FlushInterval: time.Second, Compression: CompressS2, BlockSize: 64 << 10,
		Retention: Retention{MaxAge: 720 * time.Hour, MaxBytes: 10 << 30, Interval: time.Hour}}
	if c != want {
		t.Fatalf("decoded %+v\nwant    %+v", c, want)
	}
	must(t, c.Validate("recording"))
	key, err := c.Key()
	if err != nil || len(key) != 40 {
		t.Errorf("Key = %d bytes, %v", len(key), err)
	}
	if d := (Config{Dir: DefaultDir}).WithDefaults(); d.Dir != DefaultDir || d.Rows != RowsFirst || d.FirstRows != DefaultFirstRows || d.BlockSize != DefaultBlockSize || d.Compression != CompressS2 || d.Validate("recording") != nil {
		t.Errorf("defaults = %+v", d)
	}
	var out bytes.Buffer
	must(t, yaml.NewEncoder(&out).Encode(c))
	if back, err := decodeStrict(t, out.String()); err != nil || back != c {
		t.Errorf("config does not survive a YAML round trip: %v\n%s", err, out.String())
	}
}

func TestConfigValidate(t *testing.T) {
	t.Setenv("AIRLOCK_TEST_SHORT_KEY", "short")
	t.Setenv("AIRLOCK_TEST_EMPTY_KEY", "")
	for _, tc := range []struct {
		name string
		c    Config
		want []string
	}{
		{"missing dir", Config{}, []string{"recording.dir: missing directory for recordings (e.g. ./data/recordings)"}},
		{"bad rows", Config{Dir: "d", Rows: "some"}, []string{`recording.rows: unknown mode "some" (want none, first or all)`}},
		{"negative first rows", Config{Dir: "d", FirstRows: -1}, []string{"recording.first_rows: must not be negative (got -1)"}},
		{"key env unset", Config{Dir: "d", HMACKeyEnv: "AIRLOCK_TEST_UNSET_KEY"}, []string{"recording.hmac_key_env: environment variable AIRLOCK_TEST_UNSET_KEY is unset or empty"}},
		{"key env empty", Config{Dir: "d", HMACKeyEnv: "AIRLOCK_TEST_EMPTY_KEY"}, []string{"AIRLOCK_TEST_EMPTY_KEY is unset or empty"}},
		{"key too short", Config{Dir: "d", HMACKeyEnv: "AIRLOCK_TEST_SHORT_KEY"}, []string{"recording.hmac_key_env: key in AIRLOCK_TEST_SHORT_KEY is 5 bytes, want at least 32"}},
		{"key env name", Config{Dir: "d", HMACKeyEnv: "not-a-name"}, []string{`recording.hmac_key_env: "not-a-name" is not an environment variable name`}},
		{"flush interval", Config{Dir: "d", FlushInterval: time.Millisecond}, []string{"recording.flush_interval: 1ms is out of range (want 10ms to 10m)"}},
		{"compression", Config{Dir: "d", Compression: "gzip"}, []string{`recording.compression: unknown codec "gzip" (want zstd or s2)`}},
		{"block size", Config{Dir: "d", BlockSize: 1 << 30}, []string{"recording.block_size: 1.0 GiB is out of range (want 4.0 KiB to 4.0 MiB)"}},
		{"retention", Config{Dir: "d", Retention: Retention{MaxAge: -time.Hour, MaxBytes: -1, Interval: time.Millisecond}}, []string{
			"recording.retention.max_age: must not be negative (got -1h0m0s)",
			"recording.retention.max_bytes: must not be negative",
			"recording.retention.interval: 1ms is out of range (want at least 1s)",
		}},
		{"everything at once", Config{Rows: "x", FirstRows: -2}, []string{"recording.dir:", "recording.rows:", "recording.first_rows:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate("recording")
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d problems reported, want %d:\n%v", n, len(tc.want), err)
			}
			if strings.Contains(err.Error(), "short\"") || strings.Contains(err.Error(), ": short") {
				t.Error("error reveals the key")
			}
		})
	}
}

func TestByteSizeYAML(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		bad  bool
	}{
		{"65536", 65536, false},
		{"64KiB", 64 << 10, false},
		{"10 GiB", 10 << 30, false},
		{"1.5MB", 1500000, false},
		{"lots", 0, true},
		{"[1]", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var v struct {
				S ByteSize `yaml:"s"`
			}
			err := yaml.Unmarshal([]byte("s: "+tc.in), &v)
			if tc.bad != (err != nil) || v.S != tc.want {
				t.Errorf("got %d, %v; want %d (error %v)", v.S, err, tc.want, tc.bad)
			}
		})
	}
}

func TestFactoryRefusesAMissingKey(t *testing.T) {
	_, err := NewFactory(Config{Dir: t.TempDir(), HMACKeyEnv: "AIRLOCK_TEST_RECORDING_KEY"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no key was passed") {
		t.Errorf("NewFactory = %v, want a missing key error", err)
	}
	_, err = NewFactory(Config{Dir: t.TempDir()}, Options{Key: []byte("short")})
	if err == nil {
		t.Error("NewFactory accepted a 5-byte key")
	}
	_, err = NewFactory(Config{Dir: t.TempDir(), Rows: "most"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "recording.rows") {
		t.Errorf("NewFactory = %v, want the config problem", err)
	}
}

// TestMonotonicStart: offsets are measured on the monotonic clock from the
// session's start, which arrives in UTC without a monotonic reading.
func TestMonotonicStart(t *testing.T) {
	start := time.Now().Add(-time.Second).UTC()
	m := monotonic(start)
	if !strings.Contains(m.String(), " m=") {
		t.Fatalf("monotonic(%v) = %v: no monotonic reading", start, m)
	}
	if d := m.Sub(start); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("monotonic moved the start by %v", d)
	}
	if d := time.Since(m); d < time.Second || d > time.Minute {
		t.Fatalf("time since the start = %v, want about 1s", d)
	}
}
