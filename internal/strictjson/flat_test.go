package strictjson

import (
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"
)

// Shapes like the live frames (internal/live/frames.go).
type (
	flatPhase struct {
		Type     string `json:"type"`
		SetID    string `json:"set_id"`
		Phase    string `json:"phase"`
		EventID  string `json:"event_id"`
		ClientTS *int64 `json:"client_ts"`
	}
	flatSubscribe struct {
		Type     string  `json:"type"`
		SetID    string  `json:"set_id"`
		SinceSeq *int64  `json:"since_seq"`
		Epoch    *string `json:"epoch"`
	}
	flatMixed struct {
		N    int     `json:"n"`
		U    uint8   `json:"u"`
		B    bool    `json:"b"`
		F    float64 `json:"f"`
		S    *string `json:"s"`
		Tags []int   `json:"tags"`
		In   *inner  `json:"in"`
	}
)

var flatSeeds = []string{
	`{"type":"rep.phase","set_id":"6f1c","phase":"top","event_id":"e1","client_ts":1700000000000}`,
	`{"type":"subscribe","set_id":"x","since_seq":3,"epoch":"ab"}`,
	` { "type" : "subscribe" , "set_id" : "x" , "since_seq" : null } `,
	`{"type":"a","type":"b"}`,
	`{"type":"a","Type":"b"}`,
	`{"nope":1}`,
	`{"client_ts":"12"}`,
	`{"client_ts":1.5}`,
	`{"client_ts":1e3}`,
	`{"client_ts":-0}`,
	`{"client_ts":01}`,
	`{"client_ts":99999999999999999999}`,
	`{"phase":"a\u0000b"}`,
	`{"phase":"a\"b"}`,
	`{"phase":"héllo"}`,
	`{"type":"a"}{"type":"b"}`,
	`{"type":"a"} x`,
	`{"type":"a",}`,
	`{"type":"a"`,
	`{}`,
	`[]`,
	`null`,
	`{"n":-3,"u":300,"b":true,"f":2,"s":null,"tags":[1,2],"in":{"phase":"up","at":1}}`,
	`{"n":true}`,
	`{"b":"true"}`,
	`{"u":-1}`,
	`{"type":tru}`,
	`{"type":nul,"x":1}`,
	`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17}`,
}

// decodeBoth decodes data into a fresh T by Decode (with the fast path) and
// by the general path alone, and reports any difference.
func decodeBoth[T any](data []byte) error {
	var fast, general T
	errFast := Decode(data, &fast)
	var errGeneral error
	if !utf8.Valid(data) {
		errGeneral = Decode(data, &general) // refused before either path
	} else {
		errGeneral = decodeGeneral(data, &general, reflect.TypeOf(&general))
	}
	if fmt.Sprint(errFast) != fmt.Sprint(errGeneral) {
		return fmt.Errorf("%T %q: fast path %v, general %v", fast, data, errFast, errGeneral)
	}
	if errFast == nil && !reflect.DeepEqual(fast, general) {
		return fmt.Errorf("%T %q: fast path %+v, general %+v", fast, data, fast, general)
	}
	return nil
}

func TestFastPathDecidesAsTheGeneralPath(t *testing.T) {
	t.Parallel()
	for _, s := range flatSeeds {
		for _, err := range []error{decodeBoth[flatPhase]([]byte(s)), decodeBoth[flatSubscribe]([]byte(s)), decodeBoth[flatMixed]([]byte(s))} {
			if err != nil {
				t.Error(err)
			}
		}
	}
}

// The fast path is taken for the live frame shapes (else it saves nothing).
func TestFastPathTakesLiveFrames(t *testing.T) {
	t.Parallel()
	for _, s := range flatSeeds[:3] {
		if ok, err := checkFlat([]byte(s), flatFields(reflect.TypeFor[flatSubscribe]())); s != flatSeeds[0] && (!ok || err != nil) {
			t.Errorf("%s: fast path %v %v", s, ok, err)
		}
	}
	if ok, err := checkFlat([]byte(flatSeeds[0]), flatFields(reflect.TypeFor[flatPhase]())); !ok || err != nil {
		t.Errorf("rep.phase: fast path %v %v", ok, err)
	}
}

func FuzzFastPathAgreesWithGeneral(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, err := range []error{decodeBoth[flatPhase](data), decodeBoth[flatSubscribe](data), decodeBoth[flatMixed](data)} {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeRepPhase is the cost of reading one rep.phase frame strictly:
// Decode (the fast path) and the general path it replaces.
func BenchmarkDecodeRepPhase(b *testing.B) {
	data := []byte(`{"type":"rep.phase","set_id":"0b9c2f4e-6c55-4a8e-9a43-3f3e1c1d2b7a","phase":"top","event_id":"5d8f0e0a-43a1-4c1b-8f5e-2b9d1e7c6a33","client_ts":1700000000000}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f flatPhase
			if err := Decode(data, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f flatPhase
			if err := decodeGeneral(data, &f, reflect.TypeOf(&f)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
