package masking_test

import (
	"fmt"
	"strings"

	"github.com/airlock-gw/airlock/masking"
	"github.com/airlock-gw/airlock/masking/pgcodec"
	"github.com/airlock-gw/airlock/protocols"
	"gopkg.in/yaml.v3"
)

func Example() {
	const block = `
hash_key: "a-random-key-of-at-least-16-bytes"
detect:
  - entity: email
    strategy: partial
  - entity: payment_card
    strategy: partial
    keep: 4
  - entity: secrets
    strategy: redact
columns:
  - name: "*password*"
    strategy: "null"
  - table_column: public.users.ssn
    strategy: hash
exempt: ["group:dba"]
`
	var cfg masking.Config
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		panic(err)
	}
	if err := cfg.Validate("connections[0].masking"); err != nil {
		panic(err)
	}
	src, err := masking.New(cfg, "orders", nil, pgcodec.Dialect{})
	if err != nil {
		panic(err)
	}

	fmt.Println(src.For(protocols.Identity{Name: "ann", Groups: []string{"dba"}}) == nil)

	m := src.For(protocols.Identity{Name: "agent"})
	rm := m.Plan([]protocols.Column{
		{Name: "email", Table: "public.users", Type: protocols.TypeText},
		{Name: "password_hash", Table: "public.users", Type: protocols.TypeText},
		{Name: "ssn", Table: "public.users", Type: protocols.TypeText},
		{Name: "profile", Table: "public.users", Type: protocols.TypeJSON},
	})
	row := [][]byte{
		[]byte("jane.doe@example.com"),
		[]byte("$2b$12$abcdefghijklmnopqrstuv"),
		[]byte("123-45-6789"),
		[]byte(`{"card":"4111 1111 1111 1111","token":"ghp_R2d2C3poBb8LukeLeiaHanSolo1234567890"}`),
	}
	fmt.Println(rm.MaskRow(row))
	fmt.Printf("%s | %v | %.5s… | %s\n", row[0], row[1], row[2], row[3])
	fmt.Printf("%s\n", m.Text([]byte(`ERROR: duplicate key value violates unique constraint "users_ssn_key" DETAIL: Key (ssn)=(123-45-6789) already exists.`)))
	// Output:
	// true
	// true
	// j***@example.com | [] | hash:… | {"card":"**** **** **** 1111","token":"[redacted:github_token]"}
	// ERROR: duplicate key value violates unique constraint "users_ssn_key" DETAIL: Key (ssn)=([redacted]) already exists.
}
