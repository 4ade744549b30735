package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// twilioSpec is Twilio's own OpenAPI description (testdata/twilio, MIT, see
// its LICENSE), loaded once: it is 1.8 MB.
var twilioSpec = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("testdata/twilio/twilio_api_v2010.json")
	if err != nil {
		return nil, fmt.Errorf("loading Twilio OpenAPI: %w", err)
	}
	return gorillamux.NewRouter(doc)
})

// validateTwilioRequest checks one request a fake Twilio received against
// the spec: operation, path parameters, Basic auth, form body schema — plus
// the x-twilio.conditional rules generic validators skip (exactly one of
// From and MessagingServiceSid; a Body).
func validateTwilioRequest(r received) error {
	router, err := twilioSpec()
	if err != nil {
		return err
	}
	// The fake listens on loopback; the spec's server is api.twilio.com.
	req, err := http.NewRequest(r.Method, "https://api.twilio.com"+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return err
	}
	req.Header = r.Header.Clone()
	route, params, err := router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("no Twilio operation for %s %s: %w", r.Method, r.Path, err)
	}
	if route.Operation.OperationID != "CreateMessage" {
		return fmt.Errorf("operation %s, want CreateMessage", route.Operation.OperationID)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: func(_ context.Context, ai *openapi3filter.AuthenticationInput) error {
			if ai.SecurityScheme.Type != "http" || ai.SecurityScheme.Scheme != "basic" {
				return fmt.Errorf("unexpected security scheme %s/%s", ai.SecurityScheme.Type, ai.SecurityScheme.Scheme)
			}
			if u, p, ok := ai.RequestValidationInput.Request.BasicAuth(); !ok || u == "" || p == "" {
				return errors.New("no HTTP Basic credentials")
			}
			return nil
		}}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return fmt.Errorf("request does not conform to Twilio's OpenAPI: %w", err)
	}
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		return err
	}
	if (form.Get("From") == "") == (form.Get("MessagingServiceSid") == "") {
		return errors.New("x-twilio.conditional: exactly one of From and MessagingServiceSid is required")
	}
	if form.Get("Body") == "" {
		return errors.New("x-twilio.conditional: one of Body, MediaUrl, ContentSid is required")
	}
	return nil
}

// TestTwilioValidatorRejectsNonConformingRequests: the validator is a real
// check — each broken request below fails it.
func TestTwilioValidatorRejectsNonConformingRequests(t *testing.T) {
	good := func() received {
		h := http.Header{}
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("Authorization", "Basic QUN4OnRvaw==")
		return received{Method: "POST", Path: "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json", Header: h,
			Body: []byte("To=%2B15551234567&From=%2B15550001111&Body=hi")}
	}
	if err := validateTwilioRequest(good()); err != nil {
		t.Fatalf("a conforming request fails validation: %v", err)
	}
	for name, mutate := range map[string]func(*received){
		"missing To":      func(r *received) { r.Body = []byte("From=%2B15550001111&Body=hi") },
		"bad account sid": func(r *received) { r.Path = "/2010-04-01/Accounts/AC123/Messages.json" },
		"JSON body":       func(r *received) { r.Header.Set("Content-Type", "application/json"); r.Body = []byte(`{"To":"+1555"}`) },
		"no auth":         func(r *received) { r.Header.Del("Authorization") },
		"bad service sid": func(r *received) { r.Body = []byte("To=%2B15551234567&MessagingServiceSid=MGxyz&Body=hi") },
		"From and service": func(r *received) {
			r.Body = []byte("To=%2B15551234567&From=%2B1555&MessagingServiceSid=MG" + hex32 + "&Body=hi")
		},
		"no Body":               func(r *received) { r.Body = []byte("To=%2B15551234567&From=%2B15550001111") },
		"wrong path":            func(r *received) { r.Path = "/2010-04-01/Accounts/" + testAccountSID + "/Message.json" },
		"PATCH instead of POST": func(r *received) { r.Method = "PATCH" },
	} {
		r := good()
		mutate(&r)
		if err := validateTwilioRequest(r); err == nil {
			t.Errorf("%s: validation passed, want failure", name)
		}
	}
}
