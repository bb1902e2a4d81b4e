package masking

import (
	"slices"
	"strings"
)

// entity is one kind of sensitive value a detector finds. Its name is the
// config's entity name and the metric label.
type entity uint8

const (
	entEmail entity = iota
	entCard
	entIBAN
	entPhone
	entIP
	entSSN
	entJWT
	entAWSKeyID
	entAWSSecret
	entPrivateKey
	entGitHub
	entSlack
	entSlackWebhook
	entStripe
	entBearer
	entBasicAuth
	entCredential
	numEntities

	// entColumn is the metric slot of column rules (label entity="column").
	entColumn = numEntities
)

var entityNames = [numEntities]string{
	entEmail:        "email",
	entCard:         "payment_card",
	entIBAN:         "iban",
	entPhone:        "phone",
	entIP:           "ip_address",
	entSSN:          "us_ssn",
	entJWT:          "jwt",
	entAWSKeyID:     "aws_access_key",
	entAWSSecret:    "aws_secret_key",
	entPrivateKey:   "private_key",
	entGitHub:       "github_token",
	entSlack:        "slack_token",
	entSlackWebhook: "slack_webhook",
	entStripe:       "stripe_key",
	entBearer:       "bearer_token",
	entBasicAuth:    "basic_auth",
	entCredential:   "credential",
}

// columnLabel is the metric label of values masked by a column rule.
const columnLabel = "column"

func (e entity) String() string {
	if e < numEntities {
		return entityNames[e]
	}
	return columnLabel
}

// Entity groups usable in a detect rule. us_ssn is in none of them: nine
// digit ids are everywhere, so SSN detection is only on when named.
var (
	groupPII     = []entity{entEmail, entCard, entIBAN, entPhone, entIP}
	groupSecrets = []entity{entJWT, entAWSKeyID, entAWSSecret, entPrivateKey, entGitHub,
		entSlack, entSlackWebhook, entStripe, entBearer, entBasicAuth, entCredential}
	entityGroups = map[string][]entity{
		"pii":     groupPII,
		"secrets": groupSecrets,
		"all":     slices.Concat(groupPII, groupSecrets),
	}
)

// lookupEntity resolves an entity or group name. group reports whether the
// name is a group.
func lookupEntity(name string) (ents []entity, group bool, ok bool) {
	if g, found := entityGroups[name]; found {
		return g, true, true
	}
	for e, n := range entityNames {
		if n == name {
			return []entity{entity(e)}, false, true
		}
	}
	return nil, false, false
}

// entityHelp lists the valid names for an error message.
func entityHelp() string {
	return strings.Join(entityNames[:], ", ") + ", or a group: pii, secrets, all"
}
