package approvals

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/protocols/testenv"
	"github.com/airlock-gw/airlock/session/sqldb"
)

// benchStores returns, per kind, a function that makes a database and an
// opener of stores on it.
func benchStores(b *testing.B) map[string]func(b *testing.B) func() Store {
	opener := func(b *testing.B, cfg sqldb.Config) func() Store {
		return func() Store {
			db, err := sqldb.Open(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			st, err := OpenStore(context.Background(), db, nil)
			if err != nil {
				b.Fatal(err)
			}
			return st
		}
	}
	return map[string]func(b *testing.B) func() Store{
		"sqlite": func(b *testing.B) func() Store {
			return opener(b, sqldb.Config{DSN: protocols.Secret(b.TempDir() + "/b.db")})
		},
		"postgres": func(b *testing.B) func() Store {
			dsn := testenv.PostgresURL(b, testenv.PostgresDB(b))
			return opener(b, sqldb.Config{Driver: "postgres", DSN: protocols.Secret(dsn)})
		},
	}
}

func benchService(b *testing.B, st Store, mode Mode) *Service {
	cfg := testConfig()
	cfg.Mode = mode
	s, err := Open(context.Background(), Options{Config: cfg, Store: st, PollInterval: time.Hour, SweepInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkRetryCycle measures one agent command's whole approval cycle:
// refused and recorded, approved by a reviewer, retried and consumed.
func BenchmarkRetryCycle(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			s := benchService(b, benchStores(b)[name](b)(), ModeRetry)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rr := review(alice, "prod", fmt.Sprintf("DELETE FROM t WHERE id = %d", i))
				i++
				d, _ := s.Review(ctx, rr, nil)
				if _, err := s.Decide(ctx, bob, d.ApprovalID, Approve, ""); err != nil {
					b.Fatal(err)
				}
				if d, _ := s.Review(ctx, rr, nil); d.Action != protocols.Allow {
					b.Fatal("not allowed")
				}
			}
		})
	}
}

// BenchmarkRetryStillPending measures an agent retrying a command nobody has
// approved yet: a consume miss and a reuse of the pending request.
func BenchmarkRetryStillPending(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			s := benchService(b, benchStores(b)[name](b)(), ModeRetry)
			ctx := context.Background()
			rr := review(alice, "prod", "DROP TABLE t")
			b.ReportAllocs()
			for b.Loop() {
				if d, _ := s.Review(ctx, rr, nil); d.Action != protocols.Deny {
					b.Fatal("allowed")
				}
			}
		})
	}
}

// BenchmarkHoldRelease measures the time from a reviewer's approval to the
// held session's release, in process (SQLite) and across two replicas
// through LISTEN/NOTIFY (PostgreSQL).
func BenchmarkHoldRelease(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			open := benchStores(b)[name](b)
			holder := benchService(b, open(), ModeHold)
			decider := holder
			if name == "postgres" {
				// Another replica on the same database: the wake-up must
				// travel through the server.
				decider = benchService(b, open(), ModeHold)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				h := holdReview(ctx, holder, review(alice, "prod", "DROP TABLE t"))
				var id string
				m := <-h.notes
				fmt.Sscanf(m, "approval required: request %s", &id)
				id = strings.TrimSuffix(id, ";")
				if _, err := decider.Decide(ctx, bob, id, Approve, ""); err != nil {
					b.Fatal(err)
				}
				<-h.done
				if h.dec.Action != protocols.Allow {
					b.Fatal("not allowed")
				}
			}
		})
	}
}

func BenchmarkVisible(b *testing.B) {
	plain := strings.Repeat("SELECT * FROM orders WHERE id = 42; ", 30)
	tricky := strings.Repeat("SELECT 1; -- \u202e\x1b[2J ", 30)
	for name, s := range map[string]string{"plain": plain, "hidden": tricky} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				_ = Visible(s)
			}
		})
	}
}
