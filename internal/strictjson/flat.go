package strictjson

import (
	"reflect"

	"github.com/repcue/repcue/internal/domain"
)

// The fast path. Most frames a live socket sends are flat objects — keys
// with plain strings, integers, true, false or null — for structs whose
// fields are known. For those, one pass over the bytes checks what walk would
// (each key a field's exact name, no key twice, no NUL, nothing after the
// object) without a token per value, and json.Unmarshal checks the types.
// Anything else (escapes, nesting, fractions, exponents, control bytes) is
// left to the general path, which decides as it always has.

// flatFields returns the fields of t when the fast path may decode into it: a
// struct without its own decoding.
func flatFields(t reflect.Type) map[string]reflect.Type {
	if t.Kind() != reflect.Struct || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return fieldsOf(t)
}

// checkFlat reports whether data is a flat object the fast path takes (then
// with the error walk would give for a key: unknown or repeated), or false to
// use the general path.
func checkFlat(data []byte, fields map[string]reflect.Type) (bool, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false, nil
	}
	i = skipSpace(data, i+1)
	var seen [16][]byte
	n := 0
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data), nil
	}
	for {
		// "key"
		if i >= len(data) || data[i] != '"' {
			return false, nil
		}
		end := plainString(data, i+1)
		if end < 0 {
			return false, nil
		}
		key := data[i+1 : end]
		i = skipSpace(data, end+1)
		if i >= len(data) || data[i] != ':' {
			return false, nil
		}
		// value
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return false, nil
		}
		switch c := data[i]; {
		case c == '"':
			end := plainString(data, i+1)
			if end < 0 {
				return false, nil
			}
			i = end + 1
		case c == '-' || (c >= '0' && c <= '9'):
			end := integer(data, i)
			if end < 0 {
				return false, nil
			}
			i = end
		case c == 't' && hasWord(data, i, "true"):
			i += 4
		case c == 'f' && hasWord(data, i, "false"):
			i += 5
		case c == 'n' && hasWord(data, i, "null"):
			i += 4
		default:
			return false, nil
		}
		i = skipSpace(data, i)
		if i >= len(data) || (data[i] != ',' && data[i] != '}') {
			return false, nil
		}
		// The value is well formed: now the key's checks, in walk's order.
		if n == len(seen) {
			return false, nil // a wide object: the general path
		}
		for _, k := range seen[:n] {
			if string(k) == string(key) {
				return true, domain.Invalid(string(key), "duplicate key %q", string(key))
			}
		}
		if _, known := fields[string(key)]; !known {
			return true, domain.Invalid(string(key), "unknown field %q", string(key))
		}
		seen[n] = key
		n++
		if data[i] == '}' {
			return skipSpace(data, i+1) == len(data), nil
		}
		i = skipSpace(data, i+1)
	}
}

// plainString returns the index of the quote closing a string that starts at
// i, or -1 when the string has an escape or a control byte (or no end).
func plainString(data []byte, i int) int {
	for ; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

// integer returns the end of an integer starting at i (JSON's grammar:
// -?(0|[1-9][0-9]*)), or -1 when the number is not a plain integer.
func integer(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	if i >= len(data) || data[i] < '0' || data[i] > '9' {
		return -1
	}
	if data[i] == '0' {
		i++
	} else {
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) {
		switch data[i] {
		case '.', 'e', 'E':
			return -1
		}
	}
	return i
}

func hasWord(data []byte, i int, w string) bool {
	return len(data)-i >= len(w) && string(data[i:i+len(w)]) == w
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
