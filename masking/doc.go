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
// value needs (a column rule, entity detection on text, on JSON, on array
// text, or on an opaque value that can only be nulled) and returns nil when
// no column needs any, so rows then pass untouched. RowMasker.MaskRow then
// streams each row through that plan. Masker.Text masks free text (error
// messages, notices, NOTIFY payloads, log lines) with the detectors, plus
// the column values that database error messages quote ("Key (ssn)=(…)")
// for columns under a rule. Masker.PlanCopy (or PlanCopyLines, usable
// through a structural type assertion) masks COPY … TO STDOUT text and CSV
// lines field by field, so column rules apply to COPY too.
//
// # Validity
//
// A masked value always stays valid for its column's type so drivers still
// decode the row: text gets replacement text; JSON stays valid JSON (strings
// and numbers inside it are masked, a column rule yields a JSON string); a
// Postgres array literal keeps its syntax (masked elements are re-quoted, or
// become NULL when they look like numbers or addresses and may belong to a
// numeric or inet array); every other type, and any opaque value in which a
// detector fires (binary arrays, bytea, unknown binary), becomes NULL. The
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
//   - A bytea in text output is hex-decoded before scanning (hex digits
//     would both hide text and fake digit runs); any hit nulls it.
//   - Binary numbers, times, UUIDs and booleans carry no text and are not
//     scanned: a bigint of card numbers in binary format needs a column
//     rule. Binary inet values are nulled while IP detection is on.
//   - In an array literal of unknown element type an element that could be
//     a number or an address becomes NULL rather than text.
//   - Partial keeps at most half of a value's characters, never quotes,
//     backslashes or control bytes; an email keeps its first character and
//     its domain. Hash is keyed HMAC-SHA256 over the exact bytes, so equal
//     values (and only they) hash alike on every connection sharing the key.
//
// # Concurrency
//
// A Source and its Masker are immutable and safe for concurrent use; Text
// may be called from any goroutine. A RowMasker belongs to one goroutine:
// it owns its scanner, HMAC state and output buffer, and the values it
// replaces stay valid until its next MaskRow call. Metrics are counted in
// per-row tallies and flushed to pre-resolved counters, never under a lock.
package masking
