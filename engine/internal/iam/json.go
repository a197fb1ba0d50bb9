package iam

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// jkind is the JSON type of a value.
type jkind uint8

const (
	jString jkind = iota + 1
	jNumber
	jBool
	jNull
	jObject
	jArray
)

func (k jkind) String() string {
	switch k {
	case jString:
		return "a string"
	case jNumber:
		return "a number"
	case jBool:
		return "a boolean"
	case jNull:
		return "null"
	case jObject:
		return "an object"
	}
	return "an array"
}

// jvalue is a JSON value read strictly: object members keep their order,
// and a key given twice in one object is refused (IAM's grammar: "Individual
// elements must not contain multiple instances of the same key"), where
// encoding/json would keep the last one in silence.
type jvalue struct {
	kind    jkind
	str     string // a string, a number's text, "true" or "false"
	members []jmember
	elems   []jvalue
}

type jmember struct {
	key string
	val jvalue
}

// maxDepth bounds nesting; a policy nests four levels deep at most
// (policy, Statement list, statement, Condition, operator, key, values).
const maxDepth = 10

// parseJSON reads text, which must be one JSON object.
func parseJSON(text string) (jvalue, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return v, err
	}
	if v.kind != jObject {
		return v, errors.New("a policy is a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, errors.New("text after the policy's closing brace")
	}
	return v, nil
}

func readValue(dec *json.Decoder, depth int) (jvalue, error) {
	if depth > maxDepth {
		return jvalue{}, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return jvalue{}, err
	}
	switch t := tok.(type) {
	case string:
		return jvalue{kind: jString, str: t}, nil
	case json.Number:
		return jvalue{kind: jNumber, str: t.String()}, nil
	case bool:
		if t {
			return jvalue{kind: jBool, str: "true"}, nil
		}
		return jvalue{kind: jBool, str: "false"}, nil
	case nil:
		return jvalue{kind: jNull}, nil
	case json.Delim:
		switch t {
		case '{':
			v := jvalue{kind: jObject}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return v, err
				}
				key, _ := kt.(string)
				if seen[key] {
					return v, fmt.Errorf("key %s given twice in one object", quote(key))
				}
				seen[key] = true
				val, err := readValue(dec, depth+1)
				if err != nil {
					return v, err
				}
				v.members = append(v.members, jmember{key: key, val: val})
			}
			_, err := dec.Token() // '}'
			return v, err
		case '[':
			v := jvalue{kind: jArray}
			for dec.More() {
				val, err := readValue(dec, depth+1)
				if err != nil {
					return v, err
				}
				v.elems = append(v.elems, val)
			}
			_, err := dec.Token() // ']'
			return v, err
		}
	}
	return jvalue{}, fmt.Errorf("unexpected %v", tok)
}

// get returns the member key of an object.
func (v *jvalue) get(key string) (*jvalue, bool) {
	for i := range v.members {
		if v.members[i].key == key {
			return &v.members[i].val, true
		}
	}
	return nil, false
}

// strings reads a string or a non-empty list of strings (the grammar's
// "brackets are optional for one value").
func (v *jvalue) strings(field string) ([]string, error) {
	switch v.kind {
	case jString:
		return []string{v.str}, nil
	case jArray:
		if len(v.elems) == 0 {
			return nil, errorf(ErrSyntax, field, "an empty list")
		}
		out := make([]string, 0, len(v.elems))
		for _, e := range v.elems {
			if e.kind != jString {
				return nil, errorf(ErrSyntax, field, "a list of strings holds %s", e.kind)
			}
			out = append(out, e.str)
		}
		return out, nil
	}
	return nil, errorf(ErrSyntax, field, "must be a string or a list of strings, not %s", v.kind)
}

// scalars reads a condition's values: a string, number or boolean, or a
// non-empty list of them, each as its text.
func (v *jvalue) scalars(field string) ([]string, error) {
	one := func(e *jvalue) (string, error) {
		switch e.kind {
		case jString, jNumber, jBool:
			return e.str, nil
		}
		return "", errorf(ErrSyntax, field, "a condition value is a string, a number or a boolean, not %s", e.kind)
	}
	if v.kind != jArray {
		s, err := one(v)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if len(v.elems) == 0 {
		return nil, errorf(ErrSyntax, field, "an empty list of values")
	}
	out := make([]string, 0, len(v.elems))
	for i := range v.elems {
		s, err := one(&v.elems[i])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
