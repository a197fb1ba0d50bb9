package iam

import (
	"fmt"
	"strings"
)

// keyID names a condition key Berth supports.
type keyID uint8

const (
	keyNone keyID = iota
	keyUsername
	keyUserID
	keyPrincipalArn
	keyPrincipalAccount
	keyPrincipalType
	keySourceIP
	keySecureTransport
	keyCurrentTime
	keyEpochTime
	keyRequestTag  // aws:RequestTag/<tag>
	keyTagKeys     // aws:TagKeys
	keyResourceTag // aws:ResourceTag/<tag> and ecr:ResourceTag/<tag>
)

// keyType is what a key's value is, which decides the operators it takes.
type keyType uint8

const (
	typeString keyType = iota
	typeARN            // string operators and ARN operators
	typeIP
	typeBool
	typeDate  // aws:CurrentTime
	typeEpoch // aws:EpochTime: date and numeric operators
)

// keyRef is a parsed condition key: its id and, for tag keys, the tag.
type keyRef struct {
	id  keyID
	tag string
}

// keyInfo describes a key.
type keyInfo struct {
	name  string // as AWS spells it, for messages
	typ   keyType
	multi bool // multivalued: needs ForAllValues: or ForAnyValue:
}

// keyInfos are the condition keys Berth supports: the principal's
// identity, the request's environment, and tags. Key names compare
// case-insensitively, as AWS documents.
var keyInfos = map[keyID]keyInfo{
	keyUsername:         {name: "aws:username"},
	keyUserID:           {name: "aws:userid"},
	keyPrincipalArn:     {name: "aws:PrincipalArn", typ: typeARN},
	keyPrincipalAccount: {name: "aws:PrincipalAccount"},
	keyPrincipalType:    {name: "aws:PrincipalType"},
	keySourceIP:         {name: "aws:SourceIp", typ: typeIP},
	keySecureTransport:  {name: "aws:SecureTransport", typ: typeBool},
	keyCurrentTime:      {name: "aws:CurrentTime", typ: typeDate},
	keyEpochTime:        {name: "aws:EpochTime", typ: typeEpoch},
	keyRequestTag:       {name: "aws:RequestTag/"},
	keyTagKeys:          {name: "aws:TagKeys", multi: true},
	keyResourceTag:      {name: "aws:ResourceTag/"},
}

var keysByLower = map[string]keyID{
	"aws:username":         keyUsername,
	"aws:userid":           keyUserID,
	"aws:principalarn":     keyPrincipalArn,
	"aws:principalaccount": keyPrincipalAccount,
	"aws:principaltype":    keyPrincipalType,
	"aws:sourceip":         keySourceIP,
	"aws:securetransport":  keySecureTransport,
	"aws:currenttime":      keyCurrentTime,
	"aws:epochtime":        keyEpochTime,
	"aws:tagkeys":          keyTagKeys,
}

// tagKeyPrefixes are the keys that end in a tag key.
var tagKeyPrefixes = []struct {
	prefix string
	id     keyID
}{
	{"aws:requesttag/", keyRequestTag},
	{"aws:resourcetag/", keyResourceTag},
	{"ecr:resourcetag/", keyResourceTag},
}

// maxTagKey is the longest tag key ECR and IAM accept.
const maxTagKey = 128

// lookupKey parses a condition key name.
func lookupKey(name string) (keyRef, keyInfo, error) {
	lower := strings.ToLower(name)
	if id, ok := keysByLower[lower]; ok {
		return keyRef{id: id}, keyInfos[id], nil
	}
	for _, p := range tagKeyPrefixes {
		if tag, ok := strings.CutPrefix(lower, p.prefix); ok {
			tag = name[len(name)-len(tag):] // keep the tag key as written
			if tag == "" || len(tag) > maxTagKey {
				return keyRef{}, keyInfo{}, fmt.Errorf("the tag key of %s must be 1 to %d characters", quote(name), maxTagKey)
			}
			return keyRef{id: p.id, tag: tag}, keyInfos[p.id], nil
		}
	}
	return keyRef{}, keyInfo{}, fmt.Errorf("condition key %s is not one Berth supports (aws:username, aws:userid, aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType, aws:SourceIp, aws:SecureTransport, aws:CurrentTime, aws:EpochTime, aws:RequestTag/<key>, aws:TagKeys, aws:ResourceTag/<key>, ecr:ResourceTag/<key>)", quote(name))
}
