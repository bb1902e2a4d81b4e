// Package httpreq classifies HTTP requests for Airlock's HTTP connections
// (protocols/httpproxy): APIs, LLM providers, GraphQL endpoints and gRPC
// services.
//
// A request's risk comes from, in order:
//
//   - the connection's route rules: the first rule whose methods and path
//     pattern match decides alone (POST /admin/** → http.admin). A pattern
//     matches the request path relative to the connection's base URL,
//     percent-decoded, cleaned of "." and ".." segments and compared without
//     regard to case, so that an encoded or dotted spelling of a guarded
//     route is still guarded;
//   - on a GraphQL endpoint, the operation parsed from the request
//     (github.com/vektah/gqlparser/v2; a mutation is a write, introspection
//     has its own rule, and rules naming a root field apply to operations
//     that select it) — the GraphQL-over-HTTP draft describes the request
//     forms read here: https://graphql.github.io/graphql-over-http/draft/;
//   - on a gRPC connection, the full method name (/pkg.Service/Method):
//     one no rule names is grpc.call (https://grpc.github.io/grpc/core/md_doc__p_r_o_t_o_c_o_l-_h_t_t_p2.html);
//   - otherwise the method's semantics (RFC 9110 section 9.2.1): safe
//     methods are reads, POST, PUT and PATCH http.write, DELETE http.delete,
//     any other method http.method.
//
// The redacted text shows the request line with credential-like query
// parameters removed and, for GraphQL, the operation's document.
//
// An Analyzer is immutable and safe for concurrent use.
package httpreq
