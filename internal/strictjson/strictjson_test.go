package strictjson

import (
	"errors"
	"strings"
	"testing"

	"github.com/repcue/repcue/internal/domain"
)

type inner struct {
	Phase string `json:"phase"`
	At    int64  `json:"at"`
}

type sample struct {
	Name   string   `json:"name"`
	Reps   int      `json:"reps"`
	Load   float64  `json:"load_kg"`
	Tags   []string `json:"tags"`
	Events []inner  `json:"events"`
	Extra  map[string]int
}

func TestDecodeAcceptsWellFormedInput(t *testing.T) {
	t.Parallel()
	var s sample
	err := Decode([]byte(`{"name":"a","reps":5,"load_kg":62.5,"tags":["x"],"events":[{"phase":"up","at":1}],"Extra":{"K":1}}`), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" || s.Reps != 5 || s.Load != 62.5 || s.Events[0].Phase != "up" || s.Extra["K"] != 1 {
		t.Fatalf("decoded %+v", s)
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, field, message string
	}{
		{"unknown field", `{"name":"a","role":"admin"}`, "role", "unknown field"},
		{"case variant key", `{"Reps":5}`, "Reps", "unknown field"},
		{"duplicate key", `{"reps":5,"reps":500}`, "reps", "duplicate key"},
		{"nested duplicate", `{"events":[{"phase":"up","phase":"top"}]}`, "events[0].phase", "duplicate key"},
		{"nested unknown", `{"events":[{"phase":"up","x":1}]}`, "events[0].x", "unknown field"},
		{"trailing data", `{"reps":5} {}`, "", "after the JSON value"},
		{"trailing garbage", `{"reps":5}x`, "", ""},
		{"float for int", `{"reps":2.5}`, "reps", "integer"},
		{"negative overflow", `{"reps":1e400}`, "reps", "integer"},
		{"string for int", `{"reps":"5"}`, "reps", "integer"},
		{"number for string", `{"name":5}`, "name", "string"},
		{"array for object", `[]`, "", "object"},
		{"truncated", `{"reps":5`, "", ""},
		{"empty", ``, "", ""},
		{"null", `null`, "", "JSON object"},
		{"NUL in a string", `{"name":"a\u0000b"}`, "name", "NUL"},
		{"NUL in a nested string", `{"tags":["ok","\u0000"]}`, "tags[1]", "NUL"},
		{"invalid utf-8", "{\"name\":\"\xff\"}", "", "UTF-8"},
		{"deep nesting", `{"Extra":` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `}`, "", "nested too deeply"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var s sample
			err := Decode([]byte(c.body), &s)
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalid {
				t.Fatalf("got %v, want an invalid error", err)
			}
			if c.field != "" && de.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", de.Field, c.field, de.Message)
			}
			if !strings.Contains(de.Message, c.message) {
				t.Fatalf("message %q does not mention %q", de.Message, c.message)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","reps":5}`, `{"reps":5,"reps":6}`, `{"events":[{"phase":"up","at":1}]}`,
		`{"Extra":{"a":1,"a":2}}`, `[`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		err := Decode(data, &s)
		if err == nil {
			return
		}
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.CodeInvalid {
			t.Fatalf("Decode returned %v, not an invalid error", err)
		}
	})
}
