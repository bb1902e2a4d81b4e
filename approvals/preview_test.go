package approvals

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-gw/airlock/protocols"
	"github.com/airlock-gw/airlock/session/sqldb"
)

func TestPreviewKeptWithTheRequest(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(t *testing.T) *SQLStore) {
		ctx := context.Background()
		cfg := testConfig()
		exact := true
		cfg.Preview = PreviewConfig{Timeout: 200 * time.Millisecond, ExactCount: &exact}
		cfg.Mode = ModeRetry
		s, _ := newService(t, open(t), cfg)
		rr := review(alice, "prod", "DELETE FROM t WHERE a > 1")
		var asked protocols.PreviewOptions
		rows := int64(7)
		rr.Preview = func(ctx context.Context, o protocols.PreviewOptions) *protocols.Preview {
			asked = o
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the preview has no deadline")
			}
			return &protocols.Preview{Status: protocols.PreviewOK, Effects: []protocols.PreviewEffect{{Statement: 1, Kind: "delete", Object: "public.t", EstimatedRows: &rows}}}
		}
		dec, err := s.Review(ctx, rr, nil)
		if err != nil || dec.Preview == nil || dec.Preview.Status != protocols.PreviewOK {
			t.Fatalf("decision %+v %v", dec, err)
		}
		if !asked.ExactCount {
			t.Error("exact_count not passed to the previewer")
		}
		r, err := s.Get(ctx, bob, dec.ApprovalID)
		if err != nil || r.Preview == nil || *r.Preview.Effects[0].EstimatedRows != 7 {
			t.Fatalf("stored request %+v %v", r, err)
		}
		list, _ := s.List(ctx, bob, Filter{})
		if len(list) != 1 || list[0].Preview == nil {
			t.Fatalf("listed without the preview: %+v", list)
		}
		var out strings.Builder
		printRequest(&out, r)
		if !strings.Contains(out.String(), "statement 1: delete on public.t: about 7 rows (planner estimate)") {
			t.Errorf("show lacks the preview:\n%s", out.String())
		}
		// Approved: the retry's decision carries the preview for the recording.
		if _, err := s.Decide(ctx, bob, r.ID, Approve, ""); err != nil {
			t.Fatal(err)
		}
		dec, err = s.Review(ctx, rr, nil)
		if err != nil || dec.Action != protocols.Allow || dec.Preview == nil {
			t.Fatalf("approved retry %+v %v", dec, err)
		}
	})
}

func TestPreviewNeverDelaysBeyondItsTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Preview = PreviewConfig{Timeout: 150 * time.Millisecond}
	cfg.Mode = ModeRetry
	s, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/a.db")}), cfg)
	rr := review(alice, "prod", "DROP TABLE t")
	rr.Preview = func(ctx context.Context, o protocols.PreviewOptions) *protocols.Preview {
		time.Sleep(2 * time.Second) // a previewer that ignores ctx
		return &protocols.Preview{Status: protocols.PreviewOK}
	}
	start := time.Now()
	dec, err := s.Review(context.Background(), rr, nil)
	if err != nil || dec.Preview == nil || dec.Preview.Status != protocols.PreviewTimeout {
		t.Fatalf("decision %+v %v", dec, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the request waited %s for its preview", d)
	}
	// Off by configuration: no preview at all.
	off := false
	cfg.Preview.Enabled = &off
	s2, _ := newService(t, openTestStore(t, sqldb.Config{DSN: protocols.Secret(t.TempDir() + "/b.db")}), cfg)
	if dec, _ := s2.Review(context.Background(), rr, nil); dec.Preview != nil {
		t.Fatalf("preview made though disabled: %+v", dec.Preview)
	}
}
