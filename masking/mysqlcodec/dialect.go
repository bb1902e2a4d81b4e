package mysqlcodec

import (
	"bytes"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/protocols"
)

// Dialect is MySQL's masking.Dialect.
type Dialect struct{}

var _ masking.Dialect = Dialect{}

// Codec returns nil: MySQL's values are plain bytes.
func (Dialect) Codec(protocols.Column, bool) masking.Codec { return nil }

var (
	duplicateEntry = []byte("Duplicate entry '")
	forKey         = []byte("' for key '")
)

// maxKeyName bounds the index name read after "for key '".
const maxKeyName = 256

// AppendQuotes appends the values of msg's "Duplicate entry '…' for key
// '[table.]index'" errors, named by their index: a one-column unique index
// is named after its column by default.
func (Dialect) AppendQuotes(dst []masking.Quote, msg []byte) []masking.Quote {
	b := msg
	for k := 0; ; {
		x := bytes.Index(b[k:], duplicateEntry)
		if x < 0 {
			break
		}
		vs := k + x + len(duplicateEntry)
		fk := bytes.Index(b[vs:], forKey)
		if fk < 0 {
			break
		}
		ks := vs + fk + len(forKey)
		kl := bytes.IndexByte(b[ks:min(len(b), ks+maxKeyName)], '\'')
		if kl > 0 && fk > 0 {
			key := b[ks : ks+kl]
			if dot := bytes.LastIndexByte(key, '.'); dot >= 0 {
				key = key[dot+1:]
			}
			dst = append(dst, masking.Quote{Start: vs, End: vs + fk, Columns: string(key)})
		}
		k = ks
	}
	return dst
}
