package blobstore

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	valid := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		in      string
		wantErr string
	}{
		{valid, ""},
		{"", "has 0 characters"},
		{valid[:63], "has 63 characters"},
		{valid + "0", "has 65 characters"},
		{strings.ToUpper(valid), "lowercase hex"},
		{"g" + valid[1:], "lowercase hex"},
		{"tmp.rsync-XXXX", "has 14 characters"},
	}
	for _, tc := range tests {
		ref, err := ParseRef(tc.in)
		if tc.wantErr == "" {
			if err != nil || ref.String() != tc.in {
				t.Errorf("ParseRef(%q) = %v, %v", tc.in, ref, err)
			}
			if ref != RefOf(nil) {
				t.Errorf("ParseRef(%q) is not the SHA-256 of empty content", tc.in)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseRef(%q) error = %v, want it to say %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestRefTextRoundTrip(t *testing.T) {
	ref := RefOf([]byte("hello"))
	text, _ := ref.MarshalText()
	var back Ref
	if err := back.UnmarshalText(text); err != nil || back != ref {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if ref.Compare(ref) != 0 || (Ref{}).Compare(ref) >= 0 || !(Ref{}).IsZero() {
		t.Fatal("Compare/IsZero")
	}
}

func FuzzParseRef(f *testing.F) {
	f.Add("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseRef(s)
		if err == nil && ref.String() != s {
			t.Fatalf("ParseRef(%q) accepted a second spelling of %s", s, ref)
		}
	})
}
