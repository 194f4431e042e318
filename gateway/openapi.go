package gateway

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"sort"

	"github.com/gofiber/fiber/v2"
)

// openapiFS holds the OpenAPI document in parts: base.json (info, shared
// components, health routes) and one fragment per area with its paths and
// schemas. They are merged once at start; a test keeps the result and the
// router in step.
//
//go:embed openapi/*.json
var openapiFS embed.FS

// openapiDoc is the merged document, served as is.
var openapiDoc = mustMergeOpenAPI()

type openapiPart struct {
	OpenAPI    string                     `json:"openapi,omitempty"`
	Info       json.RawMessage            `json:"info,omitempty"`
	Paths      map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes,omitempty"`
		Parameters      map[string]json.RawMessage `json:"parameters,omitempty"`
		Schemas         map[string]json.RawMessage `json:"schemas,omitempty"`
		Responses       map[string]json.RawMessage `json:"responses,omitempty"`
	} `json:"components"`
}

func mustMergeOpenAPI() []byte {
	names, err := fs.Glob(openapiFS, "openapi/*.json")
	if err != nil {
		panic(err)
	}
	sort.Strings(names) // base.json first, then areas alphabetically
	var doc openapiPart
	for _, n := range names {
		raw, err := openapiFS.ReadFile(n)
		if err != nil {
			panic(err)
		}
		var part openapiPart
		if err := json.Unmarshal(raw, &part); err != nil {
			panic(fmt.Sprintf("%s: %v", n, err))
		}
		if part.OpenAPI != "" {
			doc.OpenAPI, doc.Info = part.OpenAPI, part.Info
		}
		doc.Paths = mergeUnique(n, "path", doc.Paths, part.Paths)
		c := &doc.Components
		c.SecuritySchemes = mergeUnique(n, "security scheme", c.SecuritySchemes, part.Components.SecuritySchemes)
		c.Parameters = mergeUnique(n, "parameter", c.Parameters, part.Components.Parameters)
		c.Schemas = mergeUnique(n, "schema", c.Schemas, part.Components.Schemas)
		c.Responses = mergeUnique(n, "response", c.Responses, part.Components.Responses)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return out
}

// mergeUnique adds b to a, refusing a name two fragments both define.
func mergeUnique(file, what string, a, b map[string]json.RawMessage) map[string]json.RawMessage {
	if a == nil {
		a = map[string]json.RawMessage{}
	}
	for k := range b {
		if _, dup := a[k]; dup {
			panic(fmt.Sprintf("%s: %s %q defined twice", file, what, k))
		}
	}
	maps.Copy(a, b)
	return a
}

func (s *Server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openapiDoc)
}
