package masking

import (
	"fmt"
	"strings"
	"sync"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/prometheus/client_golang/prometheus"
)

// Source yields the Masker of each caller on one connection. It is
// immutable and safe for concurrent use.
type Source struct {
	m      *Masker // nil when nothing is configured
	exempt protocols.Principals
}

var _ protocols.MaskerSource = (*Source)(nil)

// New compiles a connection's masking config. connection labels the
// metrics; metrics may be nil. dialect reads the connection's protocol's
// own encodings and messages; nil means its values are plain bytes (see
// the package documentation).
func New(cfg Config, connection string, metrics *Metrics, dialect Dialect) (*Source, error) {
	if err := cfg.Validate("masking"); err != nil {
		return nil, fmt.Errorf("masking for connection %s: %w", connection, err)
	}
	src := &Source{exempt: cfg.Exempt}
	if len(cfg.Detect) == 0 && len(cfg.Columns) == 0 && len(cfg.JSONPaths) == 0 {
		return src, nil
	}
	e := &engine{key: []byte(cfg.HashKey.Reveal()), dialect: dialect}
	var on [numEntities]bool
	group := [numEntities]bool{}
	for _, r := range cfg.Detect {
		ents, isGroup, _ := lookupEntity(r.Entity)
		for _, ent := range ents {
			// A rule naming one entity beats a group (Validate ruled out
			// two rules of the same kind).
			if on[ent] && !group[ent] && isGroup {
				continue
			}
			on[ent], group[ent] = true, isGroup
			e.act[ent] = compileStrategy(r.Strategy, r.Keep)
		}
	}
	e.det = newDetectors(on)
	for ent := range numEntities {
		e.placeholder[ent] = []byte("[redacted:" + ent.String() + "]")
	}
	for _, r := range cfg.Columns {
		c := colRule{act: compileStrategy(r.Strategy, r.Keep)}
		if r.Name != "" {
			c.name = strings.ToLower(r.Name)
		} else {
			c.table, _ = parseTableColumn(r.TableColumn)
		}
		e.cols = append(e.cols, c)
	}
	for _, r := range cfg.JSONPaths {
		steps, _ := parseJSONPath(r.Path)
		e.paths = append(e.paths, jsonPath{steps: steps, act: compileStrategy(r.Strategy, r.Keep)})
	}
	if metrics != nil {
		for ent := range numEntities {
			if on[ent] {
				e.counters[ent] = metrics.Masked.WithLabelValues(connection, ent.String())
			}
		}
		if len(e.cols) > 0 || len(e.paths) > 0 {
			e.counters[entColumn] = metrics.Masked.WithLabelValues(connection, columnLabel)
		}
	}
	e.pool.New = func() any { return e.newWorker() }
	src.m = &Masker{e: e}
	return src, nil
}

// For returns the caller's Masker, or nil when the caller is exempt or the
// connection masks nothing.
func (s *Source) For(id protocols.Identity) protocols.Masker {
	if s == nil || s.m == nil || s.exempt.Match(id) {
		return nil
	}
	return s.m
}

// engine is a compiled Config.
type engine struct {
	det         *detectors
	act         [numEntities]action
	placeholder [numEntities][]byte
	cols        []colRule
	dialect     Dialect // nil: values are plain bytes
	key         []byte
	counters    [numEntities + 1]prometheus.Counter
	pool        sync.Pool // *worker for Text
	// paths are the JSON path rules, for Masker.JSON.
	paths []jsonPath
}

// colRule is a compiled ColumnRule: a name glob, or a table pattern.
type colRule struct {
	name  string
	table tablePattern
	act   action
}

func (e *engine) newWorker() *worker {
	w := &worker{e: e}
	w.sc.d = e.det
	return w
}

// columnRule returns the first rule matching c, or nil.
func (e *engine) columnRule(c protocols.Column) *colRule {
	if len(e.cols) == 0 {
		return nil
	}
	name := strings.ToLower(c.Name)
	schema, table, qualified := strings.Cut(strings.ToLower(c.Table), ".")
	if !qualified {
		schema, table = "", schema
	}
	for i := range e.cols {
		r := &e.cols[i]
		if r.name != "" {
			if matchGlob(r.name, name) {
				return r
			}
			continue
		}
		t := r.table
		if !matchGlob(t.column, name) {
			continue
		}
		// An unknown source table, or an unknown schema, does not
		// disprove the rule: fail closed.
		if table == "" {
			return r
		}
		if !matchGlob(t.table, table) {
			continue
		}
		if t.schema != "" && schema != "" && !matchGlob(t.schema, schema) {
			continue
		}
		return r
	}
	return nil
}

// Masker masks one connection's results for the callers it applies to. It
// is safe for concurrent use; the RowMaskers it plans are not.
type Masker struct {
	e *engine
}

var (
	_ protocols.Masker      = (*Masker)(nil)
	_ protocols.ColumnRuler = (*Masker)(nil)
)

// HasColumnRules reports whether column rules are configured. Free text
// (Text) only sees detectors, so an engine that masks rows as text without
// knowing their columns (COPY) can refuse when this is true.
func (m *Masker) HasColumnRules() bool { return len(m.e.cols) > 0 }

// Text masks free text (error messages, notices, NOTIFY payloads, COPY
// lines, log lines) with the detectors, and, when column rules exist, the
// values the dialect finds quoted in database messages (details.go); a
// null strategy redacts. It returns b itself when nothing matched,
// otherwise a new slice.
func (m *Masker) Text(b []byte) []byte {
	e := m.e
	if (!e.det.any && len(e.cols) == 0) || len(b) == 0 {
		return b
	}
	w := e.pool.Get().(*worker)
	defer func() {
		w.trim()
		e.pool.Put(w)
	}()
	spans := w.sc.scan(b)
	if len(e.cols) > 0 && e.dialect != nil {
		spans = w.detailSpans(b, spans)
	}
	if len(spans) == 0 {
		return b
	}
	out, _ := w.appendMasked(make([]byte, 0, len(b)+32*len(spans)), b, spans, true)
	w.flush()
	return out
}
