// Package pgcodec is PostgreSQL's dialect of masking: the text forms in
// which PostgreSQL carries values and messages, read so that the neutral
// masking core can mask what they hold and write it back valid.
//
// Dialect (a masking.Dialect) gives the core a codec for
//
//   - array literals, array_out's text form "{a,"b c",NULL}" with
//     dimension decoration and nesting: elements are masked one by one and
//     re-quoted, and an element that may belong to a numeric or network
//     array becomes NULL instead;
//   - binary arrays (array_send's layout): each element is scanned on its
//     own, and a hit nulls the value;
//   - bytea in text output, hex ("\x6a61…") or escape form: the bytes are
//     decoded before they are scanned, and a hit nulls the value;
//
// and finds the column values that error details quote ("Key (ssn)=(…)",
// "Failing row contains (…)") so that Text masks them under column rules.
//
// PlanCopy masks the data lines of COPY … TO STDOUT in text and CSV format
// field by field through any protocols.Masker's Plan, so column rules
// apply to COPY as to rows.
//
// The forms are those of the PostgreSQL documentation: arrays
// (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO), bytea
// (https://www.postgresql.org/docs/current/datatype-binary.html), COPY's
// file formats (https://www.postgresql.org/docs/current/sql-copy.html#SQL-COPY-FILE-FORMATS)
// and error fields (https://www.postgresql.org/docs/current/protocol-error-fields.html).
// They are read by hand: no library exposes them without a driver's type
// system, and masking must splice a few replacements into otherwise
// untouched bytes.
package pgcodec
