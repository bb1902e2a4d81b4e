package redis

import (
	"strconv"
	"strings"
)

// mask replaces a secret argument.
const mask = "***"

// Redact returns the command as text (arguments joined by spaces, quoted
// when they would not read back as one argument) with secret arguments
// replaced: AUTH's password, HELLO … AUTH user pass, ACL SETUSER >pass <pass
// #hash !hash, CONFIG SET requirepass/masterauth/… values, MIGRATE … AUTH
// pass / AUTH2 user pass.
func Redact(args []string) string {
	secret := secretArgs(args)
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch {
		case secret[i] == 1:
			b.WriteString(mask)
		case secret[i] == 2: // keep the ACL rule's operator
			b.WriteString(a[:1] + mask)
		default:
			b.WriteString(quoteArg(a))
		}
	}
	return b.String()
}

// secretArgs marks the secret arguments: 1 for the whole argument, 2 for
// all but its first byte.
func secretArgs(args []string) map[int]int {
	if len(args) == 0 {
		return nil
	}
	s := map[int]int{}
	name := strings.ToUpper(args[0])
	sub := ""
	if len(args) > 1 {
		sub = strings.ToUpper(args[1])
	}
	switch {
	case name == "AUTH":
		for i := 1; i < len(args); i++ {
			if i == len(args)-1 { // AUTH pass, AUTH user pass
				s[i] = 1
			}
		}
		if len(args) > 3 { // malformed: hide everything
			for i := 1; i < len(args); i++ {
				s[i] = 1
			}
		}
	case name == "HELLO":
		for i := 1; i < len(args); i++ {
			if strings.EqualFold(args[i], "AUTH") && i+2 < len(args) {
				s[i+2] = 1
			}
		}
	case name == "ACL" && sub == "SETUSER":
		for i := 3; i < len(args); i++ {
			if a := args[i]; a != "" && strings.ContainsRune("><#!", rune(a[0])) {
				s[i] = 2
			}
		}
	case name == "CONFIG" && sub == "SET":
		for i := 2; i+1 < len(args); i += 2 {
			if secretParams[strings.ToLower(args[i])] {
				s[i+1] = 1
			}
		}
	case name == "MIGRATE":
		for i := 6; i < len(args); i++ {
			switch strings.ToUpper(args[i]) {
			case "AUTH":
				if i+1 < len(args) {
					s[i+1] = 1
				}
			case "AUTH2":
				if i+2 < len(args) {
					s[i+2] = 1
				}
			}
		}
	}
	return s
}

// quoteArg returns a unless it needs quoting to read back as one argument.
func quoteArg(a string) string {
	if a == "" {
		return `""`
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '\\' {
			return strconv.Quote(a)
		}
	}
	return a
}
