// Package masking keeps sensitive values out of what a caller, an LLM
// agent's context window and a session recording ever see.
//
// A connection's Config names entity detectors (email, payment cards,
// IBANs, phone numbers, IP addresses, US SSNs, JWTs, cloud and SaaS tokens,
// private keys, bearer and basic credentials, password=… assignments) and
// column rules (by column name glob or by [schema.]table.column), each with a
// strategy: redact, partial, hash (keyed HMAC-SHA256) or null. New compiles
// the Config into a Source; Source.For yields the protocols.Masker of one
// caller, or nil when the caller is exempt or nothing is configured.
//
// Masker.Plan runs once per result set: it decides per column what work a
// value needs (a column rule, entity detection on text, on JSON, on the
// parts a dialect's codec decodes, or on an opaque value that can only be
// nulled) and returns nil when no column needs any, so rows then pass
// untouched. RowMasker.MaskRow then streams each row through that plan.
// Masker.Text masks free text (error messages, notices, NOTIFY payloads,
// log lines) with the detectors, plus the column values that database
// error messages quote for columns under a rule. Masker implements
// protocols.ColumnRuler, so an engine can tell whether it needs to learn
// where columns come from.
//
// # Core and dialects
//
// This package is the neutral core: detectors, strategies, column rules,
// text and JSON, and the plan that streams rows. It knows no protocol's own
// encodings. What a wire protocol spells its own way comes from the
// connection's Dialect, handed to New: a codec per column for byte strings
// and arrays, and the places where its server's messages quote column
// values. masking/pgcodec is PostgreSQL's (array literals, binary arrays,
// bytea's text output, "Key (ssn)=(…)" details, and COPY text and CSV
// lines); masking/mysqlcodec is MySQL's ("Duplicate entry '…' for key …").
// Dialects import the core; the core imports none of them.
//
// A protocol whose values are plain bytes (Redis bulk strings, HTTP
// bodies) has no dialect, and then a TypeBytes value is its raw bytes in
// either format: they are scanned as they are (a blob holding an e-mail
// address is masked) and nulled on a hit, since a replacement could
// corrupt binary content; under a column rule it is nulled. Arrays do not
// exist without a dialect: a TypeArray value is opaque like any unknown
// type, scanned whole and nulled on a hit or under a rule. Free text is
// masked by the detectors only.
//
// # Validity
//
// A masked value always stays valid for its column's type so drivers still
// decode the row: text gets replacement text; JSON stays valid JSON (strings
// and numbers inside it are masked, a column rule yields a JSON string); a
// dialect's codec keeps its form valid (a PostgreSQL array literal keeps
// its syntax: masked elements are re-quoted, or become NULL when they look
// like numbers or addresses and may belong to a numeric or inet array);
// every other type, and any opaque value in which a detector fires (binary
// arrays, bytea, raw bytes, unknown binary), becomes NULL. The
// replacements (placeholders like "[redacted:email]", "hash:" plus 16 hex
// digits, '*' runs) never contain quotes, backslashes, commas, braces, tabs
// or newlines, so COPY text and CSV lines stay well formed too.
//
// # Scanning
//
// Detection is one hand-written forward pass over the bytes (scan.go): a
// 256-entry class table skips ordinary words and only word starts, digit
// runs and a few trigger bytes ('@', ':', '=', '+', '(', '-') are examined,
// each by a bounded matcher followed by its validator (Luhn and issuer
// ranges, mod-97, octet ranges, base64url+JSON, Shannon entropy). No regular
// expression runs: Go's RE2 engine would need one pass per pattern and has
// no look-around for word boundaries, and the validators need the
// structured tokens anyway. Work per input byte is bounded by a constant, so
// 100 MB values are masked in linear time, and output is at most a small
// constant factor of the input.
//
// # Decisions
//
// Detection errs towards masking (fail closed) where a look-alike is as
// likely as the real thing, and towards leaving text alone where the shape
// alone is ordinary data:
//
//   - Payment cards need Luhn and a known issuer range and length, so
//     snowflake ids and epoch timestamps (starting with 1) never fire.
//   - Phones need a '+', a North American shape (NXX NXX XXXX) or a
//     national trunk 0 with separators; bare digit strings, seven-digit
//     local numbers and dates never fire. National forms without a trunk 0
//     (other than North American) are not detected.
//   - A bare dotted quad is an IPv4 address even when it is a version
//     number ("release 1.2.3.4" is masked); a glued one (v1.2.3.4), a longer
//     chain (1.2.3.4.5), leading zeros or "-beta" suffixes are not. IPv6
//     needs three or more groups (or an IPv4 tail), so "a::b", "fe80::1",
//     times and MAC addresses pass.
//   - us_ssn is opt-in (in no group): nine-digit ids are everywhere.
//   - A JWT's header must decode to a JSON object with "alg"; an AWS secret
//     key needs its key name or a key id just before it; credential
//     assignments need a key naming a secret and a value that is not a
//     placeholder and has enough entropy for its kind (a person's password
//     needs little, a generated token a lot). A value holding a more
//     specific entity keeps that entity's label.
//   - A PostgreSQL bytea in text output is hex-decoded before scanning
//     (hex digits would both hide text and fake digit runs); any hit nulls
//     it. Without a dialect bytes are scanned as they are.
//   - Binary numbers, times, UUIDs and booleans carry no text and are not
//     scanned: a bigint of card numbers in binary format needs a column
//     rule. Binary inet values are nulled while IP detection is on.
//   - In a PostgreSQL array literal of unknown element type an element
//     that could be a number or an address becomes NULL rather than text.
//   - Partial keeps at most half of a value's characters, never quotes,
//     backslashes or control bytes; an email keeps its first character and
//     its domain. Hash is keyed HMAC-SHA256 over the exact bytes, so equal
//     values (and only they) hash alike on every connection sharing the key.
//
// # Concurrency
//
// A Source and its Masker are immutable and safe for concurrent use; Text
// may be called from any goroutine. A RowMasker belongs to one goroutine:
// it owns its scanner, HMAC state, output buffer and the codecs its
// dialect gave it, and the values it replaces stay valid until its next
// MaskRow call. Metrics are counted in
// per-row tallies and flushed to pre-resolved counters, never under a lock.
package masking
