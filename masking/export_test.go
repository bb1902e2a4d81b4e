package masking

import "github.com/airlock-gw/airlock/protocols"

// CorpusLines is corpusLines, for the tests of package masking_test.
var CorpusLines = corpusLines

// PrefilteredEntities names the detectors the prefilter applies to.
func PrefilteredEntities() []string {
	var names []string
	for _, e := range prefiltered {
		names = append(names, entityNames[e])
	}
	return names
}

// NewPrefiltered compiles cfg twice: as New does, and with the prefilter
// off, the reference the prefilter is checked against. on reports whether
// the first one has a prefilter.
func NewPrefiltered(cfg Config, dialect Dialect) (with, without protocols.Masker, on bool, err error) {
	a, err := New(cfg, "test", nil, dialect)
	if err != nil {
		return nil, nil, false, err
	}
	b, err := New(cfg, "test", nil, dialect)
	if err != nil {
		return nil, nil, false, err
	}
	plain := *b.m.e.det
	plain.pre = prefilter{}
	b.m.e.det = &plain
	return a.m, b.m, a.m.e.det.pre.on, nil
}
