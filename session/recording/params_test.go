package recording

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/airlock-gw/airlock/protocols"
)

// TestParamsRoundTrip: a Bind's parameters come back as recorded, in both
// replay forms: text, binary (as hex), NULL, empty, withheld and cut.
func TestParamsRoundTrip(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{Key: testKey})
	info := testInfo("params")
	rec, err := f.Open(info)
	must(t, err)
	long := strings.Repeat("x", maxValue+10)
	must(t, rec.Command(&protocols.Command{Kind: "parse", Text: "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)"}, "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)"))
	must(t, rec.Parameters("p1", []protocols.Param{
		{Value: []byte("it's")},
		{Value: []byte{0, 0, 0, 42}, Binary: true},
		{},
		{Value: []byte{}},
		{Binary: true, Withheld: true, Omitted: 16},
		{Value: []byte(long)},
	}))
	must(t, rec.Close("done"))

	got := paramsFrame(t, recordingPath(t, f, info.ID), testKey)
	want := &ParamsRecord{Portal: "p1", Values: []ParamValue{
		{Value: Value{Bytes: []byte("it's")}},
		{Value: Value{Bytes: []byte{0, 0, 0, 42}}, Binary: true},
		{Value: Value{Null: true}},
		{Value: Value{Bytes: []byte{}}},
		{Value: Value{Bytes: []byte{}, Omitted: 16}, Binary: true, Withheld: true},
		{Value: Value{Bytes: []byte(long[:maxValue]), Omitted: 10}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("params = %+v\nwant %+v", got, want)
	}

	var text, js bytes.Buffer
	_, err = ReplayFile(&text, recordingPath(t, f, info.ID), ReplayOptions{Key: testKey})
	must(t, err)
	line := `params    portal p1: $1 = 'it''s', $2 = \x0000002a, $3 = NULL, $4 = '', $5 = [16 bytes withheld], $6 = '` + long[:maxValue] + `' …[10 more bytes not recorded]`
	if !strings.Contains(text.String(), line) {
		t.Errorf("replay text lacks the params line:\n%s", text.String())
	}
	_, err = ReplayFile(&js, recordingPath(t, f, info.ID), ReplayOptions{Key: testKey, JSON: true})
	must(t, err)
	if !strings.Contains(js.String(), `"type":"params"`) || !strings.Contains(js.String(), `"portal":"p1","values":["it's",{"hex":"0000002a"},null,"",{"omitted":16,"withheld":true},`) {
		t.Errorf("replay JSON lacks the params frame:\n%s", js.String())
	}
	rep, err := VerifyFile(recordingPath(t, f, info.ID), testKey)
	must(t, err)
	if !rep.OK() {
		t.Errorf("verify: %+v", rep)
	}
}

// TestBinaryValuesReplayAsText: a column's PostgreSQL type id is recorded,
// and a replay shows its binary values in PostgreSQL's text form.
func TestBinaryValuesReplayAsText(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{})
	info := testInfo("binary")
	rec, err := f.Open(info)
	must(t, err)
	cols := []protocols.Column{
		{Name: "n", Type: protocols.TypeNumber, Binary: true, Native: 23},
		{Name: "ok", Type: protocols.TypeBool, Binary: true, Native: 16},
		{Name: "id", Type: protocols.TypeUUID, Binary: true, Native: 2950},
		{Name: "raw", Type: protocols.TypeNumber, Binary: true, Native: 23},
		{Name: "t", Type: protocols.TypeText, Native: 25},
	}
	must(t, rec.Columns(cols))
	uuid := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}
	must(t, rec.Row([][]byte{{0, 0, 0, 42}, {1}, uuid, {1, 2}, []byte("plain")}))
	must(t, rec.Result(protocols.Result{Tag: "SELECT 1", Rows: 1}))
	must(t, rec.Close("done"))

	res := readFile(t, recordingPath(t, f, info.ID), nil)
	for _, fr := range res.frames {
		if fr.Type == FrameColumns && !reflect.DeepEqual(fr.Columns, cols) {
			t.Errorf("columns = %+v\nwant %+v", fr.Columns, cols)
		}
	}
	var text bytes.Buffer
	_, err = ReplayFile(&text, recordingPath(t, f, info.ID), ReplayOptions{})
	must(t, err)
	// A value that does not decode (two bytes for an int4) stays escaped.
	for _, want := range []string{"42 ", "t ", "12345678-9abc-def0-1234-56789abcdef0", `\x01\x02`, "plain"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("replay lacks %q:\n%s", want, text.String())
		}
	}
}

// TestBinaryParamsReplayAsText: parameter types are recorded when known,
// and a replay shows binary parameters of a known type in PostgreSQL's
// text form; an unknown type stays hex.
func TestBinaryParamsReplayAsText(t *testing.T) {
	f := newFactory(t, Config{Rows: RowsAll}, Options{})
	info := testInfo("binparams")
	rec, err := f.Open(info)
	must(t, err)
	must(t, rec.Parameters("", []protocols.Param{
		{Value: []byte{0, 0, 0, 42}, Binary: true, Native: 23},
		{Value: []byte{1}, Binary: true, Native: 16},
		{Value: []byte{0, 0, 0, 7}, Binary: true},
		{Value: []byte("plain"), Native: 25},
	}))
	must(t, rec.Close("done"))
	got := paramsFrame(t, recordingPath(t, f, info.ID), nil)
	var oids []uint32
	for _, v := range got.Values {
		oids = append(oids, v.Native)
	}
	if !reflect.DeepEqual(oids, []uint32{23, 16, 0, 25}) {
		t.Fatalf("recorded types %v", oids)
	}
	var text, js bytes.Buffer
	_, err = ReplayFile(&text, recordingPath(t, f, info.ID), ReplayOptions{})
	must(t, err)
	if line := `params    $1 = '42', $2 = 't', $3 = \x00000007, $4 = 'plain'`; !strings.Contains(text.String(), line) {
		t.Errorf("replay text lacks %q:\n%s", line, text.String())
	}
	_, err = ReplayFile(&js, recordingPath(t, f, info.ID), ReplayOptions{JSON: true})
	must(t, err)
	if !strings.Contains(js.String(), `{"hex":"0000002a","oid":23}`) {
		t.Errorf("replay JSON lacks the type:\n%s", js.String())
	}
}

// paramsFrame reads the recording at path and returns its last params frame.
func paramsFrame(t *testing.T, path string, key []byte) *ParamsRecord {
	t.Helper()
	var got *ParamsRecord
	for _, fr := range readFile(t, path, key).frames {
		if fr.Type == FrameParams {
			got = fr.Params
		}
	}
	if got == nil {
		t.Fatal("no params frame")
	}
	return got
}
