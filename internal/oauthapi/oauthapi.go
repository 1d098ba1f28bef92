// Package oauthapi is the HTTP face of the authorisation server for
// persons' apps (internal/oauth): the authorization endpoint (which hands
// the person to the consent page of internal/web), pushed authorization
// requests (RFC 9126), the token endpoint (authorization code with PKCE,
// refresh), revocation (RFC 7009), introspection (RFC 7662), the server's
// metadata (RFC 8414) and SMART App Launch's smart-configuration.
// internal/router mounts it.
//
// Every error is the RFC's own: JSON {error, error_description} on the
// direct endpoints, a redirect with error, state and iss to a registered
// redirect URI, and a page of its own when the client or its redirect URI
// cannot be trusted (never a redirect there).
package oauthapi

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
)

// maxForm bounds a request's form.
const maxForm = 64 << 10

// ConsentPath is the page of internal/web where the person logs on and
// decides; it gets the pending request's reference as ?request=.
const ConsentPath = "/apps/consent"

// Deps are what the endpoints need.
type Deps struct {
	OAuth *oauth.Service
	Log   *slog.Logger
}

// Server is the authorisation server's HTTP surface.
type Server struct{ d Deps }

// New returns the endpoints.
func New(d Deps) *Server { return &Server{d: d} }

// Mount registers the endpoints on mux.
func (s *Server) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", s.smart)
	mux.HandleFunc("GET /oauth/authorize", s.authorize)
	mux.HandleFunc("POST /oauth/par", s.par)
	mux.HandleFunc("POST /oauth/token", s.token)
	mux.HandleFunc("POST /oauth/revoke", s.revoke)
	mux.HandleFunc("POST /oauth/introspect", s.introspect)
}

func (s *Server) endpoint(path string) string { return s.d.OAuth.Issuer() + path }

// metadata is RFC 8414's document.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, s.serverMetadata())
}

func (s *Server) serverMetadata() map[string]any {
	return map[string]any{
		"issuer":                                           s.d.OAuth.Issuer(),
		"authorization_endpoint":                           s.endpoint("/oauth/authorize"),
		"token_endpoint":                                   s.endpoint("/oauth/token"),
		"pushed_authorization_request_endpoint":            s.endpoint("/oauth/par"),
		"revocation_endpoint":                              s.endpoint("/oauth/revoke"),
		"introspection_endpoint":                           s.endpoint("/oauth/introspect"),
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{oauth.AuthPrivateKeyJWT, oauth.AuthNone},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256", "ES384", "PS256", "RS256", "EdDSA"},
		"revocation_endpoint_auth_methods_supported":       []string{oauth.AuthPrivateKeyJWT, oauth.AuthNone},
		"introspection_endpoint_auth_methods_supported":    []string{oauth.AuthPrivateKeyJWT},
		"dpop_signing_alg_values_supported":                []string{"ES256", "ES384", "PS256", "RS256", "EdDSA"},
		"authorization_response_iss_parameter_supported":   true,
		"require_pushed_authorization_requests":            false,
		"scopes_supported":                                 []string{"patient/*.rs", "launch/patient", "offline_access"},
	}
}

// smart is SMART App Launch 2's discovery document.
func (s *Server) smart(w http.ResponseWriter, r *http.Request) {
	m := s.serverMetadata()
	m["capabilities"] = []string{"launch-standalone", "client-public", "client-confidential-asymmetric", "context-standalone-patient",
		"permission-patient", "permission-v2", "permission-v1", "permission-offline"}
	m["scopes_supported"] = []string{"patient/*.rs", "patient/Patient.rs", "patient/Observation.rs", "patient/Condition.rs",
		"patient/AllergyIntolerance.rs", "patient/MedicationStatement.rs", "patient/Immunization.rs", "launch/patient", "offline_access"}
	httpx.WriteJSON(w, http.StatusOK, m)
}

// form parses a POST form: url-encoded, bounded, each parameter once.
func form(w http.ResponseWriter, r *http.Request) (url.Values, *oauth.Error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, &oauth.Error{Code: "invalid_request", Description: "send the parameters as application/x-www-form-urlencoded", Status: 400}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return nil, &oauth.Error{Code: "invalid_request", Description: "the form is malformed or larger than 64 KiB", Status: 400}
	}
	return single(r.PostForm)
}

// single refuses a parameter given twice (RFC 6749 3.1, 3.2).
func single(v url.Values) (url.Values, *oauth.Error) {
	for k, vs := range v {
		if len(vs) > 1 {
			return nil, &oauth.Error{Code: "invalid_request", Description: "parameter " + k + " is given more than once", Status: 400}
		}
	}
	return v, nil
}

// oauthError answers a direct request with the RFC's error JSON.
func (s *Server) oauthError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		s.d.Log.ErrorContext(r.Context(), "oauth request failed", "err", err, "request_id", httpx.RequestID(r.Context()))
		oe = &oauth.Error{Code: "server_error", Description: "the server could not handle the request; try again later", Status: http.StatusServiceUnavailable}
	}
	if oe.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="zorgkluis", error="`+oe.Code+`"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, oe.Status, map[string]string{"error": oe.Code, "error_description": oe.Description})
}

func (s *Server) authRequest(v url.Values) oauth.AuthRequest {
	return oauth.AuthRequest{ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), ResponseType: v.Get("response_type"),
		Scope: v.Get("scope"), State: v.Get("state"), CodeChallenge: v.Get("code_challenge"), CodeChallengeMethod: v.Get("code_challenge_method"),
		Audience: v.Get("aud"), DPoPJKT: v.Get("dpop_jkt"), RequestURI: v.Get("request_uri")}
}

// authorize checks the request and sends the browser to the consent page.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q, e := single(r.URL.Query())
	if e != nil {
		s.errorPage(w, r, e.Description)
		return
	}
	ref, err := s.d.OAuth.Authorize(r.Context(), s.authRequest(q))
	var ae *oauth.AuthorizeError
	switch {
	case errors.As(err, &ae) && ae.RedirectURI != "":
		http.Redirect(w, r, ae.Location(s.d.OAuth.Issuer()), http.StatusSeeOther)
	case errors.As(err, &ae):
		s.errorPage(w, r, ae.Err.Description)
	case err != nil:
		s.d.Log.ErrorContext(r.Context(), "authorize", "err", err, "request_id", httpx.RequestID(r.Context()))
		s.errorPage(w, r, "the server could not handle the request; try again later")
	default:
		http.Redirect(w, r, ConsentPath+"?request="+url.QueryEscape(ref), http.StatusSeeOther)
	}
}

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Koppeling met app niet mogelijk</title><link rel="stylesheet" href="/static/app.css"></head>
<body><main><h1>Koppeling met app niet mogelijk</h1>
<p>De app vroeg toegang op een manier die zorgkluis niet kan vertrouwen. Er is niets gedeeld. Sluit dit venster en probeer het opnieuw vanuit de app.</p>
<p lang="en">The app's request could not be trusted; nothing was shared.</p>
<p><small>{{.}}</small></p></main></body></html>`))

// errorPage is shown instead of a redirect when the client or its
// redirect URI is not trusted (RFC 6749 4.1.2.1).
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = errorTemplate.Execute(w, detail)
}

func (s *Server) clientAuth(r *http.Request, v url.Values, path string) oauth.ClientAuth {
	return oauth.ClientAuth{ClientID: v.Get("client_id"), AssertionType: v.Get("client_assertion_type"), Assertion: v.Get("client_assertion"),
		Endpoint: s.endpoint(path)}
}

// client reads a direct request's form and authenticates its client; it
// answers the request itself when either fails.
func (s *Server) client(w http.ResponseWriter, r *http.Request, path string) (url.Values, *oauth.Client, bool) {
	v, e := form(w, r)
	if e != nil {
		s.oauthError(w, r, e)
		return nil, nil, false
	}
	c, err := s.d.OAuth.AuthenticateClient(r.Context(), s.clientAuth(r, v, path))
	if err != nil {
		s.oauthError(w, r, err)
		return nil, nil, false
	}
	return v, c, true
}

var errNoToken = &oauth.Error{Code: "invalid_request", Description: "token is required", Status: http.StatusBadRequest}

// par stores a pushed authorization request (RFC 9126).
func (s *Server) par(w http.ResponseWriter, r *http.Request) {
	v, c, ok := s.client(w, r, "/oauth/par")
	if !ok {
		return
	}
	uri, ttl, err := s.d.OAuth.Push(r.Context(), c, s.authRequest(v))
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"request_uri": uri, "expires_in": int(ttl.Seconds())})
}

// token redeems a code or rotates a refresh token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	v, c, ok := s.client(w, r, "/oauth/token")
	if !ok {
		return
	}
	var proof *oauth.DPoPProof
	if vals := r.Header.Values("DPoP"); len(vals) > 1 {
		s.oauthError(w, r, &oauth.Error{Code: "invalid_dpop_proof", Description: "send one DPoP proof", Status: 400})
		return
	} else if len(vals) == 1 {
		proof = &oauth.DPoPProof{Header: vals[0], Method: http.MethodPost, URL: s.endpoint("/oauth/token")}
	}
	var t oauth.Tokens
	var err error
	switch v.Get("grant_type") {
	case "authorization_code":
		t, err = s.d.OAuth.Exchange(r.Context(), c, v.Get("code"), v.Get("redirect_uri"), v.Get("code_verifier"), proof)
	case "refresh_token":
		t, err = s.d.OAuth.Refresh(r.Context(), c, v.Get("refresh_token"), proof)
	case "":
		err = &oauth.Error{Code: "invalid_request", Description: "grant_type is required", Status: 400}
	default:
		err = &oauth.Error{Code: "unsupported_grant_type", Description: "grant_type must be authorization_code or refresh_token", Status: 400}
	}
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpx.WriteJSON(w, http.StatusOK, t)
}

// revoke is RFC 7009: 200 whether or not the token was known.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	v, c, ok := s.client(w, r, "/oauth/revoke")
	if !ok {
		return
	}
	if v.Get("token") == "" {
		s.oauthError(w, r, errNoToken)
		return
	}
	if err := s.d.OAuth.Revoke(r.Context(), c, v.Get("token")); err != nil {
		s.oauthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// introspect is RFC 7662, for resource servers with their own credentials.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	v, c, ok := s.client(w, r, "/oauth/introspect")
	if !ok {
		return
	}
	if v.Get("token") == "" {
		s.oauthError(w, r, errNoToken)
		return
	}
	out, err := s.d.OAuth.Introspect(r.Context(), c, v.Get("token"))
	if err != nil {
		s.oauthError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, out)
}
