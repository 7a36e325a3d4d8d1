package httpapi_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/repcue/repcue/api"
)

// Every operation of api/openapi.yaml lists the statuses any request may meet,
// so that the contract test can hold every answer to the document: 413 and 415
// (compressed or oversized bodies, judged before any route, on every path) and,
// where a sign-in is needed, 401.
func TestOpenAPIListsTheStatusesEveryOperationCanAnswer(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			want := []string{"413", "415"}
			secured := doc.Security
			if op.Security != nil {
				secured = *op.Security
			}
			if len(secured) > 0 {
				want = append(want, "401")
			}
			for _, code := range want {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s %s does not list %s", method, path, code)
				}
			}
		}
	}
}
