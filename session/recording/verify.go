package recording

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Status is a verification's verdict.
type Status string

// Verification verdicts.
const (
	// Intact: every frame checks, the trailer is present and valid and, when
	// a key was given, every seal is signed with it.
	Intact Status = "intact"
	// Unfinished: what is there checks, but the file stops before its
	// trailer, at or inside a block: the writer stopped (crash, full disk,
	// still recording) or the file was truncated. Frames up to Sealed are
	// trustworthy.
	Unfinished Status = "unfinished"
	// Altered: bytes that were completely written do not match their
	// checksums, chain or signatures: the file was edited or damaged.
	Altered Status = "altered"
	// Unverified: the chain checks but its signatures could not be: a key
	// was given and the recording is unsigned or signed with another key.
	Unverified Status = "unverified"
)

// Report is the outcome of verifying one recording.
type Report struct {
	Status Status `json:"status"`
	// Header is the session header; nil when it could not be read.
	Header *Header `json:"header,omitempty"`
	// Frames counts frames whose chain link checked; Sealed those covered
	// by the last valid checkpoint or trailer.
	Frames int64 `json:"frames"`
	Sealed int64 `json:"sealed"`
	Blocks int   `json:"blocks"`
	// Bytes counts the bytes read and trusted.
	Bytes int64 `json:"bytes"`
	// BadFrame is the index of the first frame that failed or is missing;
	// -1 when there is none or the header itself is bad.
	BadFrame int64 `json:"bad_frame"`
	// Offset is the byte offset of the block (or header) where the problem is.
	Offset  int64  `json:"offset,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Trailer says whether a trailer was found, signed and valid.
	Trailer TrailerState `json:"trailer"`
	// Signed says the header declares a signing key (KeyID); Checked that
	// signatures were verified with the given key.
	Signed  bool   `json:"signed"`
	Checked bool   `json:"signatures_checked"`
	KeyID   string `json:"key_id,omitempty"`
	// GivenKeyID identifies the key Verify was given, if any.
	GivenKeyID string `json:"given_key_id,omitempty"`
}

// TrailerState describes the trailer.
type TrailerState struct {
	Present bool `json:"present"`
	Signed  bool `json:"signed"`
	Valid   bool `json:"valid"`
}

// OK reports whether the recording is intact.
func (r Report) OK() bool { return r.Status == Intact }

// String is a one-line summary for a terminal, naming the first bad frame.
func (r Report) String() string {
	sig := "unsigned"
	switch {
	case r.Checked:
		sig = "signatures verified"
	case r.Signed && r.GivenKeyID != "":
		sig = "signed with key " + r.KeyID + ", not the given key " + r.GivenKeyID + ": signatures not checked"
	case r.Signed:
		sig = "signed with key " + r.KeyID + ", signatures not checked (no key given)"
	case r.GivenKeyID != "":
		sig = "unsigned, though a key was given"
	}
	switch r.Status {
	case Intact:
		return fmt.Sprintf("intact: %d frames in %d block%s, trailer valid, %s", r.Frames, r.Blocks, plural(int64(r.Blocks)), sig)
	case Unverified:
		return fmt.Sprintf("unverified: %s; %d frames chain correctly", r.Problem, r.Frames)
	case Unfinished:
		if r.Sealed == 0 {
			return fmt.Sprintf("unfinished: %s; no frame is sealed", r.Problem)
		}
		return fmt.Sprintf("unfinished: %s; frames 0-%d are sealed and check (%s)", r.Problem, r.Sealed-1, sig)
	}
	if r.BadFrame < 0 {
		return "altered: " + r.Problem
	}
	return fmt.Sprintf("altered: first bad frame %d (block at byte %d): %s; %d frames before it check", r.BadFrame, r.Offset, r.Problem, r.Frames)
}

// Verify reads a whole recording and reports whether it is intact. key is
// the HMAC key the recordings are signed with; nil checks the chain only,
// which catches damage and naive edits but not an editor who recomputes
// it. The error is for I/O failures only; what is wrong with the recording
// is in the Report.
func Verify(r io.Reader, key []byte) (Report, error) {
	return scan(r, key, nil)
}

// VerifyFile verifies the recording at path.
func VerifyFile(path string, key []byte) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{BadFrame: -1}, fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	return Verify(f, key)
}

// visitor receives what a scan reads.
type visitor interface {
	header(h Header) error
	frame(f *Frame) error
}

// scan reads every frame, hands the header and each frame to v (when not
// nil) and builds the report.
func scan(src io.Reader, key []byte, v visitor) (Report, error) {
	rep := Report{BadFrame: -1, GivenKeyID: KeyID(key)}
	rd, err := NewReader(src, key)
	rd.lazy = v == nil
	if err == nil {
		h := rd.Header()
		rep.Header = &h
		rep.Signed, rep.Checked, rep.KeyID = rd.Signed(), rd.Checked(), h.KeyID
		if v != nil {
			if verr := v.header(h); verr != nil {
				return rep, verr
			}
		}
		for {
			var f *Frame
			f, err = rd.Next()
			if err != nil {
				break
			}
			rep.Frames++
			if v != nil {
				if verr := v.frame(f); verr != nil {
					return rep, verr
				}
			}
		}
	}
	rep.Sealed, rep.Blocks, rep.Bytes = rd.Sealed(), rd.Blocks(), rd.Offset()
	rep.Trailer = rd.Trailer()
	var fe *FormatError
	switch {
	case err == io.EOF:
		rep.Status = Intact
		if len(key) > 0 && !rep.Checked {
			rep.Status = Unverified
			if rep.Signed {
				rep.Problem = fmt.Sprintf("signed with key %s, not with the given key (%s)", rep.KeyID, rep.GivenKeyID)
			} else {
				rep.Problem = "the recording is not signed"
			}
		}
	case errors.As(err, &fe):
		rep.Status = Altered
		if fe.Kind == ErrUnfinished {
			rep.Status = Unfinished
		}
		rep.BadFrame, rep.Offset, rep.Problem = fe.Frame, fe.Offset, fe.Reason
		if fe.Frame < 0 {
			rep.Problem = "header: " + fe.Reason
		}
		if rep.Trailer.Present {
			// A trailer followed by garbage, or frames after it.
			rep.Trailer.Valid = false
		}
	default:
		return rep, err
	}
	return rep, nil
}
