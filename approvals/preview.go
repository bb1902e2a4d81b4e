package approvals

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/airlock-gw/airlock/protocols"
)

// preview fills r.Preview from rr when the connection's preview settings
// ask for one: within the configured timeout, and never longer, whatever
// the previewer does.
func (s *Service) preview(ctx context.Context, r *Request, rr protocols.ReviewRequest) {
	if rr.Preview == nil {
		return
	}
	var cc *ConnectionConfig
	if c, ok := s.conns[r.Connection]; ok {
		cc = &c
	}
	set := resolvePreview(&s.cfg.Preview, cc)
	if !set.Enabled {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, set.Timeout)
	defer cancel()
	start := time.Now()
	done := make(chan *protocols.Preview, 1)
	go func() { done <- rr.Preview(pctx, protocols.PreviewOptions{ExactCount: set.ExactCount}) }()
	var p *protocols.Preview
	select {
	case p = <-done:
	case <-pctx.Done():
		// A previewer that does not return in time is not waited for.
		p = &protocols.Preview{Status: protocols.PreviewTimeout, Note: fmt.Sprintf("no answer within %s", set.Timeout)}
	}
	if p == nil {
		return
	}
	if p.Elapsed == 0 {
		p.Elapsed = time.Since(start)
	}
	r.Preview = p
	s.log.Debug("preview made", "status", p.Status, "effects", len(p.Effects), "elapsed", p.Elapsed)
}

func (s *SQLStore) insertPreview(ctx context.Context, q querier, r *Request) error {
	b, err := json.Marshal(r.Preview)
	if err != nil {
		return fmt.Errorf("encode preview: %w", err)
	}
	if _, err := q.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO airlock_approval_previews (request_id, preview) VALUES (?, ?)`), r.ID, string(b)); err != nil {
		return fmt.Errorf("insert approval preview: %w", err)
	}
	return nil
}

// loadPreviews attaches the previews of the requests in byID (whose ids
// are args).
func (s *SQLStore) loadPreviews(ctx context.Context, q querier, byID map[string]*Request, args []any) error {
	rows, err := q.QueryContext(ctx, s.dialect.Rebind(`SELECT request_id, preview FROM airlock_approval_previews
		WHERE request_id IN (?`+strings.Repeat(", ?", len(args)-1)+`)`), args...)
	if err != nil {
		return fmt.Errorf("load approval previews: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var raw sql.NullString
		if err := rows.Scan(&id, &raw); err != nil {
			return fmt.Errorf("load approval previews: %w", err)
		}
		if r := byID[id]; r != nil && raw.Valid {
			var p protocols.Preview
			if err := json.Unmarshal([]byte(raw.String), &p); err != nil {
				return fmt.Errorf("decode preview of request %s: %w", id, err)
			}
			r.Preview = &p
		}
	}
	return rows.Err()
}

// printPreview writes a request's preview for a terminal.
func printPreview(out io.Writer, p *protocols.Preview) {
	if p == nil {
		return
	}
	fmt.Fprintln(out, "Preview:")
	for _, line := range p.Lines() {
		fmt.Fprintf(out, "  %s\n", Visible(line))
	}
}
