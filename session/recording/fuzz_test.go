package recording

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

var update = flag.Bool("update", false, "rewrite golden files and the fuzz seed corpora")

// FuzzReader feeds arbitrary bytes to the reader, Verify and both replay
// forms: none may panic, and what Verify calls intact must read back whole.
// Run it with a short -fuzzminimizetime (e.g. 2s): minimising a recording
// seed takes long, and the fuzzer reports no progress meanwhile.
func FuzzReader(f *testing.F) {
	for _, seed := range readerSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, key := range [][]byte{nil, testKey} {
			rep, err := Verify(bytes.NewReader(data), key)
			if err != nil {
				t.Fatalf("Verify on a byte slice returned an I/O error: %v", err)
			}
			if rep.OK() && rep.Frames != rep.Sealed {
				t.Fatalf("intact report with %d frames but %d sealed", rep.Frames, rep.Sealed)
			}
			if rep.Status == "" {
				t.Fatal("report without a status")
			}
			_ = rep.String()
		}
		for _, js := range []bool{false, true} {
			if _, err := Replay(io.Discard, bytes.NewReader(data), ReplayOptions{JSON: js, Key: testKey}); err != nil {
				t.Fatalf("Replay: %v", err)
			}
		}
	})
}

// FuzzPayload decodes arbitrary payloads as every frame type, renders what
// decodes, and checks that replies and exchanges re-encode to what decodes
// the same. Like FuzzReader, run it with a short -fuzzminimizetime: some
// seeds are 64 KiB long.
func FuzzPayload(f *testing.F) {
	for _, seed := range payloadSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		_, _ = decodeCommand(p)
		_, _ = decodeDecision(p)
		_, _ = decodeColumns(p)
		_, _ = decodeResult(p)
		_, _ = decodeEnd(p)
		_, _ = decodeSeal(p)
		if rec, err := decodeParams(p); err == nil {
			// Rendering decodes binary values by their recorded types.
			_ = (&textPrinter{pg: true}).paramsText(rec)
		}
		if x, err := decodeExchange(p); err == nil {
			_ = (&textPrinter{}).exchangeText(x)
			again, err := decodeExchange(appendExchange(nil, exchangeOf(x), true, maxText))
			if err != nil || again.Status != x.Status || len(again.RequestHeaders) != len(x.RequestHeaders) ||
				again.ResponseBody.Size != x.ResponseBody.Size || len(again.ResponseBody.Sample) > MaxBodySample {
				t.Fatalf("re-encoded exchange: %v, %+v, from %+v", err, again, x)
			}
		}
		rep, derr := decodeReply(p)
		if cerr := checkReply(p); (derr == nil) != (cerr == nil) {
			t.Fatalf("decodeReply: %v, checkReply: %v", derr, cerr)
		}
		if derr == nil {
			_ = (&textPrinter{}).replyText(rep)
			raw := make([][]byte, len(rep.Values))
			for i, v := range rep.Values {
				if !v.Null {
					raw[i] = v.Bytes
				}
			}
			again, err := decodeReply(appendReply(nil, rep.Kind, rep.Count, raw))
			if err != nil || again.Count != rep.Count || len(again.Values) != len(rep.Values) {
				t.Fatalf("re-encoded reply: %v, %+v, from %+v", err, again, rep)
			}
		}
		if vals, err := decodeRow(p); err == nil {
			// A row that decodes re-encodes to one that decodes the same.
			raw := make([][]byte, len(vals))
			for i, v := range vals {
				if !v.Null {
					raw[i] = v.Bytes
				}
			}
			again, err := decodeRow(appendRow(nil, raw))
			if err != nil || len(again) != len(vals) {
				t.Fatalf("re-encoded row: %v, %d values, want %d", err, len(again), len(vals))
			}
			for i := range vals {
				if again[i].Null != vals[i].Null || !bytes.Equal(again[i].Bytes, vals[i].Bytes) {
					t.Fatalf("value %d changed: %+v -> %+v", i, vals[i], again[i])
				}
			}
		}
	})
}

func payloadSeeds() [][]byte {
	d := protocols.Decision{Action: protocols.Deny, Risk: protocols.RiskHigh, Rules: []string{"schema.drop"}, Reason: "r", ApprovalID: "a", Reviewer: "b"}
	n := int64(3)
	granted := protocols.Decision{Action: protocols.Allow, Risk: protocols.RiskHigh, Grant: "g", PolicyAction: protocols.Review, Audit: true,
		Preview: &protocols.Preview{Status: protocols.PreviewOK, Effects: []protocols.PreviewEffect{{Statement: 1, Kind: "delete", Object: "public.t", EstimatedRows: &n}}}}
	var head [32]byte
	return [][]byte{
		appendCommand(nil, "query", "SELECT 1", 0, nil),
		appendDecision(nil, &d, maxText),
		appendDecision(nil, &granted, maxText),
		appendColumns(nil, []protocols.Column{{Name: "id", Table: "t", Type: protocols.TypeNumber, Binary: true}}, maxText),
		appendRow(nil, [][]byte{[]byte("1"), nil, {}, bytes.Repeat([]byte("x"), maxValue+1)}),
		appendResult(nil, &protocols.Result{Tag: "SELECT 1", Rows: 1, Error: "e", Code: "22012"}, maxText),
		appendParams(nil, "p", []protocols.Param{{Value: []byte{0, 0, 0, 42}, Binary: true, Native: 23}, {Value: []byte("x"), Native: 25}, {Binary: true, Withheld: true, Omitted: 3}}),
		appendParams(nil, "", []protocols.Param{{Value: []byte{1, 2}, Binary: true, Native: 1700}, {Value: []byte{0, 0, 0, 1, 0, 0, 0, 0}, Binary: true, Native: 1184}}),
		appendStr(nil, "client closed", maxText),
		appendSeal(nil, 7, &head, bytes.Repeat([]byte{1}, 32)),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		appendCommand(nil, "request", "POST /v1/charges", 0, &protocols.Payload{Method: "POST", Path: "/v1/charges?key=k", Body: []byte("{}")}),
		appendCommand(nil, "tool", "search_docs", 0, &protocols.Payload{Tool: "search_docs", Arguments: []byte(`{"q":"x"}`)}),
		appendReply(nil, "array", 5, [][]byte{[]byte("a"), nil, {0xff, 0}}),
		appendReply(nil, "bulk", 1, [][]byte{bytes.Repeat([]byte("v"), maxValue+1)}),
		appendExchange(nil, &protocols.Exchange{Method: "GET", Path: "/v1/x?token=t", Status: 200,
			RequestHeaders:  []protocols.Header{{Name: "Accept", Value: "*/*"}, {Name: "Authorization", Value: "Bearer t"}},
			ResponseHeaders: []protocols.Header{{Name: "Content-Type", Value: "application/json"}},
			ResponseBody:    []byte(`{"ok":true}`), ResponseBytes: 11}, true, maxText),
	}
}

// exchangeOf is the exchange a recorded one was written from.
func exchangeOf(x *ExchangeRecord) *protocols.Exchange {
	return &protocols.Exchange{Method: x.Method, Path: x.Path, Status: x.Status,
		RequestHeaders: x.RequestHeaders, ResponseHeaders: x.ResponseHeaders,
		RequestBody: x.RequestBody.Sample, RequestBytes: x.RequestBody.Size,
		ResponseBody: x.ResponseBody.Sample, ResponseBytes: x.ResponseBody.Size}
}

// readerSeeds are a signed recording, pieces of it and hostile headers,
// then the same recording compressed with S2 and a piece of that, then a
// version 3 recording of replies and exchanges and a piece of that.
func readerSeeds(t testing.TB) [][]byte {
	rows := func(rec protocols.Recorder) {
		sampleSession(t, rec)
		must(t, rec.Columns([]protocols.Column{{Name: "v"}}))
		for i := range 300 {
			must(t, rec.Row([][]byte{fmt.Appendf(nil, "row %d", i)}))
		}
	}
	full := seedRecording(t, CompressZstd, testInfo("seed"), rows)
	s2 := seedRecording(t, CompressS2, testInfo("seed"), rows)
	v3 := seedRecording(t, CompressZstd, httpInfo("seed"), func(rec protocols.Recorder) {
		for range 12 {
			httpSession(t, rec)
			redisSession(t, rec)
		}
	})
	seeds := append(seedPieces(t, full), s2, s2[:blockOffsets(t, s2)[1]+20])
	return append(seeds, v3, v3[:blockOffsets(t, v3)[1]+20])
}

// seedRecording records a fuzz seed session with codec.
func seedRecording(t testing.TB, codec Compression, info protocols.SessionInfo, session func(rec protocols.Recorder)) []byte {
	dir := t.TempDir()
	fac, err := NewFactory(Config{Dir: dir, Rows: RowsAll, BlockSize: MinBlockSize, Compression: codec}, Options{Key: testKey, Version: "fuzz", Node: "n"})
	must(t, err)
	defer fac.Close()
	rec, err := fac.Open(info)
	must(t, err)
	session(rec)
	must(t, rec.Close("done"))
	full, err := os.ReadFile(filepath.Join(dir, info.ID+FileExt))
	must(t, err)
	return full
}

// seedPieces returns full, pieces of it and hostile headers.
func seedPieces(t testing.TB, full []byte) [][]byte {
	offs := blockOffsets(t, full)
	hostileHeader := append(append([]byte(nil), magic[:]...), 1, 0, 0xff, 0xff, 0x0f, 0) // claims 1 MiB
	hostileBlock := append(append([]byte(nil), full[:offs[0]]...), 0xff, 0xff, 0x7f, 0, 0xff, 0xff, 0x7f, 0)
	return [][]byte{
		full,
		full[:offs[0]],
		full[:offs[1]],
		full[:offs[1]+20],
		append(append([]byte(nil), full[:offs[0]]...), full[offs[1]:]...),
		hostileHeader,
		hostileBlock,
		nil,
		[]byte("not a recording at all"),
	}
}

// TestHostileLengthsAllocateLittle checks that length fields claiming
// megabytes cost no more than the bytes actually present.
func TestHostileLengthsAllocateLittle(t *testing.T) {
	seeds := readerSeeds(t)
	for i, data := range seeds[5:7] {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 10 {
			rep, err := Verify(bytes.NewReader(data), nil)
			must(t, err)
			if rep.OK() {
				t.Fatalf("hostile seed %d verified", i)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 256<<10 {
			t.Errorf("hostile seed %d: %d bytes allocated per Verify", i, per)
		}
	}
}

// TestUpdateFuzzCorpus writes the seeds above into testdata/fuzz with -update.
func TestUpdateFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the fuzz seed corpora")
	}
	write := func(name string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", name)
		must(t, os.MkdirAll(dir, 0o755))
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
		}
	}
	write("FuzzReader", readerSeeds(t))
	write("FuzzPayload", payloadSeeds())
}

// FuzzCheckRow checks that the allocation-free row check Verify uses
// accepts exactly what decodeRow accepts.
func FuzzCheckRow(f *testing.F) {
	for _, seed := range payloadSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		_, derr := decodeRow(p)
		if cerr := checkRow(p); (derr == nil) != (cerr == nil) {
			t.Fatalf("decodeRow: %v, checkRow: %v", derr, cerr)
		}
	})
}
