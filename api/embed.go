// Package api holds the published contract: the OpenAPI document of the REST
// surface and the description of the live protocol. The OpenAPI document is
// embedded so the server can serve it and the tests can validate against it.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
