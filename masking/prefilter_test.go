package masking

import (
	"bufio"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// prefiltered are the detectors the prefilter can apply to; any subset of
// them gets a prefilter, any other detector turns it off.
var prefiltered = []entity{entEmail, entCard, entPhone, entSSN, entIP}

// prefilterSets returns every non-empty subset of prefiltered as detector
// pairs: with the prefilter, and the same detectors without it.
func prefilterSets() (with, without []*detectors) {
	for mask := 1; mask < 1<<len(prefiltered); mask++ {
		var on [numEntities]bool
		for i, e := range prefiltered {
			on[e] = mask&(1<<i) != 0
		}
		d := newDetectors(on)
		plain := *d
		plain.pre = prefilter{}
		with, without = append(with, d), append(without, &plain)
	}
	return with, without
}

// detectorSets are every detector alone, all of them, the personal-data
// ones, the secret ones, and a fixed sample of random combinations.
func detectorSets() [][numEntities]bool {
	var sets [][numEntities]bool
	var all, pii, secrets [numEntities]bool
	for e := range entity(numEntities) {
		var one [numEntities]bool
		one[e], all[e] = true, true
		sets = append(sets, one)
		switch e {
		case entEmail, entCard, entPhone, entSSN, entIP, entIBAN:
			pii[e] = true
		default:
			secrets[e] = true
		}
	}
	sets = append(sets, all, pii, secrets, quickstartSet())
	r := rand.New(rand.NewPCG(17, 19))
	for range 40 {
		var on [numEntities]bool
		for e := range on {
			on[e] = r.IntN(3) == 0
		}
		sets = append(sets, on)
	}
	return sets
}

// allSets returns detectors for every detectorSets entry as built, and the
// same detectors with the prefilter and the pair filter off: the plain
// scan every word start goes through.
func allSets() (with, without []*detectors) {
	for _, on := range detectorSets() {
		d := newDetectors(on)
		plain := *d
		plain.pre, plain.pairsOff = prefilter{}, true
		with, without = append(with, d), append(without, &plain)
	}
	return with, without
}

func TestPrefilterOnForPersonalData(t *testing.T) {
	with, _ := prefilterSets()
	for _, d := range with {
		if !d.pre.on {
			t.Fatalf("prefilter off for %v", d.on)
		}
	}
}

// sameScan fails when the prefilter changes what any detector set finds in b.
func sameScan(t testing.TB, with, without []*detectors, b []byte) {
	t.Helper()
	for i := range with {
		a := (&scanner{d: with[i]}).scan(b)
		want := (&scanner{d: without[i]}).scan(b)
		if !slices.Equal(a, want) {
			t.Fatalf("detectors %v on %q: prefiltered scan %v, full scan %v", with[i].on, b, a, want)
		}
	}
}

func corpusLines(t testing.TB) []string {
	files, _ := filepath.Glob("testdata/detect/*.txt")
	if len(files) == 0 {
		t.Fatal("no detector corpus")
	}
	var out []string
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			l := sc.Text()
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if rest, ok := strings.CutPrefix(l, "q:"); ok {
				if u, err := strconv.Unquote(rest); err == nil {
					l = u
				}
			}
			out = append(out, l)
		}
		fh.Close()
	}
	return out
}

// TestPrefilterNeverHidesAMatch checks, for every subset of the prefiltered
// detectors, that scanning with the prefilter finds exactly what scanning
// without it finds: on the detector corpus (every positive and negative
// example), on ordinary rows, and on random strings dense in digits and
// separators.
func TestPrefilterNeverHidesAMatch(t *testing.T) {
	with, without := prefilterSets()
	aw, awo := allSets()
	with, without = append(with, aw...), append(without, awo...)
	// The shortest match of each digit detector sits at its bound.
	edges := []string{"4222222222222", "card 4222222222222.", "078-05-1120", "1.2.3.4", "::1", "a@b.co",
		// IBANs whose country code starts with a trigger letter of
		// another detector, paired with a letter outside its pair set.
		"AT61 1904 3002 3457 3201", "gb82 west 1234 5698 7654 32", "pl61 1090 1014 0000 0712 1981 2874", "BE68 5390 0754 7034"}
	for _, l := range append(corpusLines(t), edges...) {
		sameScan(t, with, without, []byte(l))
		sameScan(t, with, without, []byte("note: "+l+" (see above)"))
	}
	r := rand.New(rand.NewPCG(7, 11))
	for range 200 {
		for _, v := range oltpRow(r) {
			sameScan(t, with, without, v)
		}
	}
	const alphabet = "0123456789012345678901234567890123456789 -.+()@:/aZé\x00\xff_='AKISJxbBpPeghswrEeAaRrCcTtkKyYoO\\\""
	pieces := []string{"AKIA", "ASIA", "eyJ", "bearer ", "Basic ", "password '", "PASSWORD '", "xoxb-", "xapp-",
		"-----BEGIN ", "RSA PRIVATE KEY-----", "hooks.slack.com/services/", "https://hooks.slack.com/services/",
		"ghp_", "github_pat_", "sk_live_", "rk_test_", "whsec_", "DE89", "de89", "GB82WEST",
		"password=", "secret: ", "://user:", "@example.com", "4111 1111 1111 1111", "+44 20 7946 0958",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2ln", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"abcdefghijklmnopqrstuvwxyz0123456789ABCD", "ordinary words ", "fe80::1", "10.0.0.1", "AKIAIOSFODNN7EXAMPLE",
		"BeArEr ", "BASIC ", "bEaReR dGhpcyBpcyBhIHRva2VuIHZhbHVl", "Basic dXNlcjpwYXNzd29yZA==", "PassWord '", "API_KEY=",
		"x-api-key: ", "AccessKey=", "Private_Key: ", "CREDENTIAL=", "passphrase:", "Pwd=", "\"token\":\"", "O'Brien",
		"aws_secret_access_key = ", "gho_", "ghs_", "xoxp-", "e\\yJ", "AK\\IA", "\\", "http://u:", "@h.io"}
	for range 20000 {
		var b []byte
		for range r.IntN(6) {
			if r.IntN(2) == 0 {
				b = append(b, pieces[r.IntN(len(pieces))]...)
			}
			for range r.IntN(12) {
				b = append(b, alphabet[r.IntN(len(alphabet))])
			}
		}
		sameScan(t, with, without, b)
	}
}

// TestPrefilterDigitCount checks the eight-bytes-at-a-time digit count
// against a byte loop, high bytes and every offset included.
func TestPrefilterDigitCount(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for range 50000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			switch r.IntN(3) {
			case 0:
				b[i] = byte('0' + r.IntN(10))
			case 1:
				b[i] = byte(r.IntN(256))
			default:
				b[i] = "/:09\x2f\x3a\xb0\xb9"[r.IntN(8)]
			}
		}
		digits := 0
		for _, c := range b {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		for _, min := range []int{1, 4, 8, 9, 13} {
			p := prefilter{on: true, minDigits: min}
			if got, want := p.needsScan(b), digits >= min; got != want {
				t.Fatalf("%q (%d digits), min %d: needsScan %v, want %v", b, digits, min, got, want)
			}
		}
	}
}

func TestPrefilterOffWithIBAN(t *testing.T) {
	var on [numEntities]bool
	on[entIBAN], on[entEmail] = true, true
	if newDetectors(on).pre.on {
		t.Error("iban on: the prefilter would skip values its matches start in")
	}
}

// quickstartSet is the quickstart's detectors (airlock.yaml): e-mail,
// payment cards and every secret detector.
func quickstartSet() [numEntities]bool {
	var on [numEntities]bool
	on[entEmail], on[entCard] = true, true
	for _, e := range groupSecrets {
		on[e] = true
	}
	return on
}

// TestPrefilterRulesOutOrdinaryText checks that the prefilter does its job
// with the quickstart's detectors: ordinary values are not scanned, while
// each secret detector's strings, in any case where the detector ignores
// case, are.
func TestPrefilterRulesOutOrdinaryText(t *testing.T) {
	d := newDetectors(quickstartSet())
	if !d.pre.on || !d.pre.secrets.on {
		t.Fatal("prefilter off for the quickstart's detectors")
	}
	for _, v := range []string{
		"A sturdy oak dining table with six matching chairs, finished in a warm walnut stain.",
		"Ships flat-packed in 3 boxes (total 48.5 kg). Assembly takes about 45 minutes.",
		"Replacement part #A-1042 sent on 2024-03-18, tracking updated in the portal.",
		"Jane O'Brien", "Bob's bike and a cab", "Basically a table, bearers and a basics-free tab", "ORD-2024-004211", "shipped", "Hauptstraße 12, Berlin 10115",
	} {
		if d.pre.needsScan([]byte(v)) {
			t.Errorf("%q is scanned", v)
		}
	}
	for _, v := range []string{
		"x eyJhbG.e.x", "id AKIAIOSFODNN7EXAMPLE", "ASIA", "-----BEGIN RSA", "a ghp_x", "github_pat_1", "xoxb-1", "xapp-1",
		"hooks.slack.com/services/x", "sk_live_x", "rk_test_x", "whsec_x", "BEARER abc", "bAsIc x",
		"PassWord 'x'", "x API_KEY=1", "Token: x", "pwd=x", "{\"secret\":1}", "u://a:b@h", "e\\yJ",
	} {
		if !d.pre.needsScan([]byte(v)) {
			t.Errorf("%q is ruled out", v)
		}
	}
}

// FuzzPrefilter checks on arbitrary bytes that the prefilter never hides a
// match from any subset of the detectors it applies to.
func FuzzPrefilter(f *testing.F) {
	for _, l := range []string{"jane@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", "078-05-1120", "10.0.0.1", "fe80::1", "ordinary words 12",
		"bEaReR dGhpcyBpcyBhIHRva2Vu", "PASSWORD 'x1'", "api_key: c2VjcmV0LXZhbHVl", "id AKIAIOSFODNN7EXAMPLE", "e\\yJhbGciOiJ9.e.e", "xoxb-1-2"} {
		f.Add([]byte(l))
	}
	with, without := prefilterSets()
	aw, awo := allSets()
	with, without = append(with, aw...), append(without, awo...)
	f.Fuzz(func(t *testing.T, b []byte) { sameScan(t, with, without, b) })
}
