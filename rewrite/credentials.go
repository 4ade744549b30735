package rewrite

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
