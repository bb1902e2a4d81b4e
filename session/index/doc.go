// Package index keeps the session index: one row per recording in the same
// SQL store as the approvals (SQLite embedded, PostgreSQL shared), so
// sessions can be listed and found by identity, connection and time, and
// old recordings pruned by age and total size.
//
// A Store implements recording.Index: the recording Factory inserts a row when
// a session starts and completes it when the session ends (end time, frames,
// bytes, end reason). On SQLite it also implements session.DeferredIndex:
// starts are inserted in batches after their sessions begin, with the ends
// of the same flush interval (a session already ended is inserted whole),
// and Adopt registers at startup the recordings a crash kept out.
// Each Airlock instance (node) writes recordings to its
// own disk, so retention and crash recovery only touch the calling node's
// rows, and only delete files inside its recording directory. A row whose
// session is still recording (no end time) is never pruned. Replicas on a
// shared store heartbeat in it (Heartbeat), and close the entries of a
// replica that stopped beating as abandoned (StaleNodes, AbandonNode).
//
// Times are stored as microseconds since the Unix epoch (BIGINT), as in the
// approvals tables, so both dialects compare and sort them the same way.
// Store is safe for concurrent use.
package index
