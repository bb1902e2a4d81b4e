// Package mysqlcodec is MySQL's dialect of masking. MySQL's values need no
// codec: text and blobs travel as their own bytes in the text and binary
// protocols alike, there are no arrays, and JSON is sent as text, so the
// core reads every value as it is. What is MySQL's own is the message in
// which the server repeats a value: a duplicate key error
// (ER_DUP_ENTRY, https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_dup_entry)
// quotes the value and names the index, so Text masks it when the index is
// named after a rule-masked column.
package mysqlcodec
