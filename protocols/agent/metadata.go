package agent

import (
	_ "embed"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(openAPI)
}

// metadataPath is where the protected resource metadata of the resource
// at path is (RFC 9728 section 3.1): the MCP endpoint has its own, the
// query API the listener's.
func metadataPath(path string) string {
	if path == "/mcp" || strings.HasPrefix(path, "/mcp/") {
		return "/.well-known/oauth-protected-resource/mcp"
	}
	return "/.well-known/oauth-protected-resource"
}

// resourceMetadata serves RFC 9728 protected resource metadata, so that
// MCP clients learn that the resource takes bearer tokens in the header
// and, when an OIDC issuer is configured, where to get one.
func (s *Server) resourceMetadata(w http.ResponseWriter, r *http.Request) {
	resource := baseURL(r)
	switch r.URL.Path {
	case "/.well-known/oauth-protected-resource":
	case "/.well-known/oauth-protected-resource/mcp":
		resource += "/mcp"
	default:
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", "no protected resource at this path")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "use GET")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, &oauthex.ProtectedResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   s.authz,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Airlock",
		ResourceDocumentation:  baseURL(r) + "/v1/openapi.json",
	})
}
