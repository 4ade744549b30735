package rewrite

import "net/http"

// Credentials are the legacy API credentials a client put in its request
// (Clickatell's user, password and api_id). postern never forwards them; a
// route may require them to match, so an existing ISE configuration doubles
// as a shared secret.
type Credentials struct {
	User     string
	Password string
	APIID    string
}

// CredentialReader is implemented by dialects whose requests carry legacy
// credentials.
type CredentialReader interface {
	// Credentials returns what in carries. A request it cannot read yields
	// empty credentials, never an error: the caller then refuses it as
	// unauthenticated, and Parse reports the malformed request.
	Credentials(in Inbound) Credentials
}

var _ CredentialReader = ClickatellHTTP{}

// Credentials reads user, password and api_id from the query and, for a
// form POST, the body (the body wins, as in Parse).
func (ClickatellHTTP) Credentials(in Inbound) Credentials {
	params, err := parseForm(in.RawQuery)
	if err != nil {
		return Credentials{}
	}
	if in.Method == http.MethodPost && len(in.Body) > 0 {
		if body, err := parseForm(string(in.Body)); err == nil && hasLegacyKey(body) {
			for k, v := range body {
				params[k] = v
			}
		}
	}
	return Credentials{User: first(params, "user"), Password: first(params, "password"), APIID: first(params, "api_id")}
}
