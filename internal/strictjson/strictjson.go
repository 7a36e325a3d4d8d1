// Package strictjson decodes JSON the way repcue's API promises: unknown fields,
// keys in another letter case, duplicate keys, wrong types, invalid UTF-8, deep
// nesting and trailing data are all refused with an error naming the field.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/repcue/repcue/internal/domain"
)

// MaxDepth is the deepest nesting of objects and arrays accepted.
const MaxDepth = 32

// Decode decodes data into v (a pointer to a struct) strictly. Errors are
// *domain.Error with code invalid and the offending field.
func Decode(data []byte, v any) error {
	if !utf8.Valid(data) {
		return domain.Invalid("", "the body is not valid UTF-8")
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return domain.Internal(errors.New("strictjson: Decode needs a pointer"))
	}
	// First pass: structure only, against the exact field names of v's type.
	if fields := flatFields(t.Elem()); fields != nil {
		switch ok, err := checkFlat(data, fields); {
		case err != nil:
			return err
		case ok:
			// Every key is a field's exact name, once, and data is one object
			// with nothing after it: what is left to check is each value's
			// type, which Unmarshal reports as the general path does.
			if err := json.Unmarshal(data, v); err != nil {
				return translate(err)
			}
			return nil
		}
	}
	return decodeGeneral(data, v, t)
}

// decodeGeneral is Decode for any input: the keys checked by walking the
// tokens, then the value decoded.
func decodeGeneral(data []byte, v any, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if k := t.Elem().Kind(); (k == reflect.Struct || k == reflect.Map) && bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return domain.Invalid("", "the body must be a JSON object")
	}
	if err := walk(dec, t.Elem(), "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Invalid("", "unexpected data after the JSON value")
	}
	// Second pass: the real decode, for types and values.
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return translate(err)
	}
	return nil
}

func translate(err error) error {
	var typeErr *json.UnmarshalTypeError
	var synErr *json.SyntaxError
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		return de
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return domain.Invalid("", "the body must be a JSON %s", describe(typeErr.Type))
		}
		return domain.Invalid(field, "%s must be %s", field, describe(typeErr.Type))
	case errors.As(err, &synErr):
		return domain.Invalid("", "malformed JSON at byte %d", synErr.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Invalid("", "the body is empty or truncated")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return domain.Invalid(name, "unknown field %q", name)
	}
	return domain.Invalid("", "malformed JSON")
}

func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number in range"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}

// walk reads one JSON value from dec, checking object keys against t.
func walk(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > MaxDepth {
		return domain.Invalid(path, "the JSON is nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return translate(err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		if str, isString := tok.(string); isString && strings.ContainsRune(str, 0) {
			return domain.Invalid(path, "%s must not contain a NUL character", fieldName(path))
		}
		return nil
	}
	switch delim {
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
					break // a type with its own decoding: no key check
				}
				fields = fieldsOf(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return translate(err)
			}
			key, _ := keyTok.(string)
			field := join(path, key)
			if strings.ContainsRune(key, 0) {
				return domain.Invalid(path, "a key must not contain a NUL character")
			}
			if seen[key] {
				return domain.Invalid(field, "duplicate key %q", field)
			}
			seen[key] = true
			next := elem
			if fields != nil {
				ft, known := fields[key]
				if !known {
					return domain.Invalid(field, "unknown field %q", field)
				}
				next = ft
			}
			if err := walk(dec, next, field, depth+1); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	if err != nil {
		return translate(err)
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func fieldName(path string) string {
	if path == "" {
		return "the value"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf returns the exact JSON names of a struct's fields, embedded ones included.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fieldsOf(ft) {
					m[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}
