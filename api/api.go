// Package api holds the description of Ponte's admin API, openapi.yaml
// (OpenAPI 3.1), embedded so that Ponte serves the document it is tested
// against.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
