package protocols

import "testing"

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1024": 1024, "64MiB": 64 << 20, "10GB": 10e9, "512k": 512 << 10} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	if _, err := ParseByteSize("lots"); err == nil {
		t.Error("accepted lots")
	}
}
