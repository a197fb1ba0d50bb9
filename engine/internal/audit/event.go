package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// A record is stored as one line of JSON in the shape of a CloudTrail
// event (CloudTrail's "record contents" and "userIdentity element"), so
// that an export is the lines themselves and tools that read CloudTrail
// (jq, Athena's CloudTrail tables, SIEM parsers) read it:
//
//	{"eventVersion":"1.11","eventTime":"2026-11-23T10:15:00.123456789Z",
//	 "userIdentity":{"type":"IAMUser","principalId":"AIDA...","arn":"arn:aws:iam::123456789012:user/alice",
//	                 "accountId":"123456789012","userName":"alice"},
//	 "eventSource":"ecr.amazonaws.com","eventName":"BatchGetImage","awsRegion":"us-east-1",
//	 "sourceIPAddress":"192.0.2.10","userAgent":"containerd/2.0",
//	 "errorCode":"AccessDenied","errorMessage":"...",                  (when the request failed)
//	 "requestParameters":{"repositoryName":"app","imageTag":"v1"},     (null without a repository or parameters)
//	 "responseElements":null,
//	 "additionalEventData":{"decision":"Allow","statement":"...","api":"oci","method":"HEAD","path":"/v2/app/manifests/v1","mutating":false},
//	 "requestID":"...","eventID":"...","readOnly":true,
//	 "resources":[{"accountId":"123456789012","type":"AWS::ECR::Repository","ARN":"arn:aws:ecr:us-east-1:123456789012:repository/app"}],
//	 "eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}
//
// Two departures from CloudTrail, both for the log's own use: eventTime
// has nine fixed digits of fraction (CloudTrail's has none), so that the
// text sorts as the time does and the order of records is exact; and
// eventTime comes second, right after eventVersion, at a fixed offset, so
// that a reader finds a line's time without decoding it. JSON readers do
// not care about key order.

// eventVersion is the CloudTrail record format version the lines follow.
const eventVersion = "1.11"

// linePrefix begins every line Berth writes; the time follows it.
const linePrefix = `{"eventVersion":"` + eventVersion + `","eventTime":"`

// timeLayout is eventTime's form: UTC, nanoseconds, fixed width, so that
// lexical order is time order (for years 0 to 9999).
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// timeLen is the length of a formatted eventTime.
const timeLen = len(timeLayout)

// awsDomain follows the service prefix in eventSource, as CloudTrail
// names services ("ecr.amazonaws.com"); Berth's own actions have the
// event source "berth".
const awsDomain = ".amazonaws.com"

// berthService is the service prefix of Berth's own actions.
const berthService = "berth"

// eventSource is the CloudTrail event source of an action's service.
func eventSource(service string) string {
	if service == berthService {
		return berthService
	}
	return service + awsDomain
}

// serviceOf is the service prefix of a CloudTrail event source.
func serviceOf(source string) string {
	return strings.TrimSuffix(source, awsDomain)
}

// formatTime returns t as eventTime, clamped to the years the layout can
// write.
func formatTime(t time.Time) string {
	var b [timeLen]byte
	return string(appendTime(b[:0], t))
}

// appendTime appends t (in UTC) in timeLayout, digit by digit: what
// t.AppendFormat(b, timeLayout) writes, in a tenth of its time (every
// record is stamped with it while the log's queue is locked).
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	nsec := t.Nanosecond()
	switch {
	case year < 0:
		year, month, day, hour, minute, sec, nsec = 0, time.January, 1, 0, 0, 0, 0
	case year > 9999:
		year, month, day, hour, minute, sec, nsec = 9999, time.December, 31, 23, 59, 59, 999999999
	}
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, nsec, 9)
	return append(b, 'Z')
}

// appendDigits appends v (0 <= v < 10^width) in width decimal digits,
// with leading zeros.
func appendDigits(b []byte, v, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}

// zeroTime fills the eventTime of a line encoded before its time is
// known; the writer stamps the time over it (stampTime).
var zeroTime = []byte(formatTime(time.Time{}))

// stampTime writes t over the eventTime of a line that encodeRecord made.
func stampTime(line []byte, t time.Time) {
	var b [timeLen]byte
	copy(line[len(linePrefix):], appendTime(b[:0], t))
}

// lineTime returns the eventTime text of a line Berth wrote (the fixed
// offset after linePrefix), without decoding it; ok is false for a line
// of another shape.
func lineTime(line []byte) (text []byte, ok bool) {
	end := len(linePrefix) + timeLen
	if len(line) <= end || !bytes.HasPrefix(line, []byte(linePrefix)) || line[end] != '"' {
		return nil, false
	}
	return line[len(linePrefix):end], true
}

// encoder turns records into lines; it holds what every line of one log
// shares.
type encoder struct {
	region  string // awsRegion
	account string // recipientAccountId
	// ids memoizes the userIdentity elements of authenticated callers;
	// nil: encoded every time.
	ids *identities
}

// encode appends r (normalized) as one line, ending in '\n', with the
// zero time in place of eventTime.
func (e *encoder) encode(b []byte, r *Record) []byte {
	b = append(b, linePrefix...)
	b = append(b, zeroTime...)
	b = append(b, `",`...)
	b = e.ids.append(b, r)
	service, name, _ := strings.Cut(r.Action, ":")
	b = append(b, `},"eventSource":`...)
	b = appendString(b, eventSource(service))
	b = append(b, `,"eventName":`...)
	b = appendString(b, name)
	b = append(b, `,"awsRegion":`...)
	b = appendString(b, e.region)
	b = append(b, `,"sourceIPAddress":`...)
	b = appendString(b, r.SourceIP)
	b = append(b, `,"userAgent":`...)
	b = appendString(b, r.UserAgent)
	b = appendField(b, "errorCode", r.ErrorCode)
	b = appendField(b, "errorMessage", r.ErrorMessage)
	b = append(b, `,"requestParameters":`...)
	if r.Repository == "" && len(r.Parameters) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		first := true
		if r.Repository != "" {
			b = append(b, `"repositoryName":`...)
			b = appendString(b, r.Repository)
			first = false
		}
		keys := make([]string, 0, len(r.Parameters))
		for k := range r.Parameters {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, r.Parameters[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"responseElements":null,"additionalEventData":{"decision":`...)
	b = appendString(b, string(r.Decision))
	b = appendField(b, "statement", r.Statement)
	b = append(b, `,"api":`...)
	b = appendString(b, string(r.API))
	b = appendField(b, "method", r.Method)
	b = appendField(b, "path", r.Path)
	b = append(b, `,"mutating":`...)
	b = appendBool(b, r.Mutating)
	b = append(b, `},"requestID":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"eventID":`...)
	b = appendString(b, r.EventID)
	b = append(b, `,"readOnly":`...)
	b = appendBool(b, r.ReadOnly)
	if r.Resource != "*" {
		b = append(b, `,"resources":[{`...)
		account, typ := arnAccountType(r.Resource)
		if account != "" {
			b = append(b, `"accountId":`...)
			b = appendString(b, account)
			b = append(b, ',')
		}
		if typ != "" {
			b = append(b, `"type":`...)
			b = appendString(b, typ)
			b = append(b, ',')
		}
		b = append(b, `"ARN":`...)
		b = appendString(b, r.Resource)
		b = append(b, "}]"...)
	}
	b = append(b, `,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":`...)
	b = appendString(b, e.account)
	b = append(b, `,"eventCategory":"Management"}`...)
	return append(b, '\n')
}

// arnAccountType returns the account of an ARN and the CloudFormation
// type CloudTrail gives its resource (empty when Berth knows none).
func arnAccountType(arn string) (account, typ string) {
	// arn:partition:service:region:account:resource
	var parts [5]string
	rest := arn
	for i := range parts {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return "", ""
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	account = parts[4]
	switch service := parts[2]; {
	case service == "ecr" && strings.HasPrefix(rest, "repository/"):
		typ = "AWS::ECR::Repository"
	case service == "kms" && strings.HasPrefix(rest, "key/"):
		typ = "AWS::KMS::Key"
	case service == "kms" && strings.HasPrefix(rest, "alias/"):
		typ = "AWS::KMS::Alias"
	}
	return account, typ
}

// appendField appends `,"name":"value"` unless value is empty.
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does
// (without its HTML escapes): quotes, backslashes and control characters
// escaped, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look of its own (a
		// record is mostly ARNs, names and paths that need none).
		for i+8 <= len(s) && !needsEscapeCheck(s, i) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// needsEscapeCheck reports whether one of the eight bytes of s at i
// might need escaping: a control character, a quote, a backslash, or a
// byte of a multi-byte character (which may be invalid UTF-8, U+2028 or
// U+2029). It may say so of bytes that need nothing (a byte after a
// control character), never the other way.
func needsEscapeCheck(s string, i int) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	control := (x - 0x20*ones) & ^x // a byte below 0x20 (when none is 0x80 or above)
	q := x ^ ('"' * ones)
	quote := (q - ones) & ^q
	bs := x ^ ('\\' * ones)
	backslash := (bs - ones) & ^bs
	return (control|quote|backslash|x)&highs != 0
}

// parsers are the JSON parsers of decodeRecord. fastjson parses a line
// about four times faster than encoding/json decodes it into a struct,
// which is most of a query's time (docs/audit.md has the figures).
var parsers fastjson.ParserPool

// decodeRecord reads one line (without its '\n') back into a Record: the
// CloudTrail fields encode writes, wherever they are in the object;
// other fields are ignored. A line that is not a JSON object, or lacks a
// time or an action, is ErrCorrupt. It never panics, whatever the bytes
// (the fuzz target holds it to that).
func decodeRecord(line []byte) (Record, error) {
	var r Record
	if len(line) > maxLineBytes {
		return r, fmt.Errorf("%w: line of %d bytes", ErrCorrupt, len(line))
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(line)
	if err != nil {
		return r, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	o, err := v.Object()
	if err != nil {
		return r, fmt.Errorf("%w: not a JSON object", ErrCorrupt)
	}
	// One pass over each object, each field by its key.
	var eventTime, source, name string
	r.Resource = "*"
	o.Visit(func(key []byte, v *fastjson.Value) {
		switch string(key) {
		case "eventTime":
			eventTime = asString(v)
		case "eventSource":
			source = asString(v)
		case "eventName":
			name = asString(v)
		case "eventID":
			r.EventID = asString(v)
		case "requestID":
			r.RequestID = asString(v)
		case "sourceIPAddress":
			r.SourceIP = asString(v)
		case "userAgent":
			r.UserAgent = asString(v)
		case "errorCode":
			r.ErrorCode = asString(v)
		case "errorMessage":
			r.ErrorMessage = asString(v)
		case "readOnly":
			r.ReadOnly = v.Type() == fastjson.TypeTrue
		case "userIdentity":
			v.GetObject().Visit(func(key []byte, v *fastjson.Value) {
				switch string(key) {
				case "type":
					r.PrincipalType = PrincipalType(asString(v))
				case "principalId":
					r.UserID = asString(v)
				case "arn":
					r.PrincipalARN = asString(v)
				case "accountId":
					r.Account = asString(v)
				case "userName":
					r.UserName = asString(v)
				}
			})
		case "additionalEventData":
			v.GetObject().Visit(func(key []byte, v *fastjson.Value) {
				switch string(key) {
				case "decision":
					r.Decision = Decision(asString(v))
				case "statement":
					r.Statement = asString(v)
				case "api":
					r.API = API(asString(v))
				case "method":
					r.Method = asString(v)
				case "path":
					r.Path = asString(v)
				case "mutating":
					r.Mutating = v.Type() == fastjson.TypeTrue
				}
			})
		case "requestParameters":
			v.GetObject().Visit(func(key []byte, v *fastjson.Value) {
				if v.Type() != fastjson.TypeString {
					return // a parameter Berth did not write
				}
				if string(key) == "repositoryName" {
					r.Repository = asString(v)
					return
				}
				if r.Parameters == nil {
					r.Parameters = make(map[string]string)
				}
				r.Parameters[string(key)] = asString(v)
			})
		case "resources":
			if arn := asString(v.Get("0", "ARN")); arn != "" {
				r.Resource = arn
			}
		}
	})
	t, err := time.Parse(time.RFC3339Nano, eventTime)
	if err != nil {
		return Record{}, fmt.Errorf("%w: eventTime %q", ErrCorrupt, eventTime)
	}
	if source == "" || name == "" {
		return Record{}, fmt.Errorf("%w: no eventSource or eventName", ErrCorrupt)
	}
	r.Time = t.UTC()
	r.Action = serviceOf(source) + ":" + name
	return r, nil
}

// asString is v's string, or "" when v is missing or not a string.
func asString(v *fastjson.Value) string {
	if v == nil {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		return ""
	}
	return string(b)
}

// validLine reports whether line is JSON (what an export writes out
// without decoding it).
func validLine(line []byte) bool {
	return fastjson.ValidateBytes(line) == nil
}

// Decode reads one line of a segment or of an export (without its '\n')
// back into a Record, as queries do: for a reader of an export, such as a
// client of the admin API. An error wraps ErrCorrupt.
func Decode(line []byte) (Record, error) { return decodeRecord(line) }
