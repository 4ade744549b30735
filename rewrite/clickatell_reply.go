package rewrite

import (
	"bytes"
	"encoding/json"
	"strings"
)

// clickatellAPI selects the error-code table: the legacy REST API numbers its
// errors like the HTTP API ("001", "105"), the One API has its own small
// integers (1, 25, 43), and the two overlap without agreeing.
type clickatellAPI int

const (
	apiREST clickatellAPI = iota + 1
	apiOne
	apiPlatform
)

func (a clickatellAPI) String() string {
	switch a {
	case apiOne:
		return "clickatell-one"
	case apiPlatform:
		return "clickatell-platform"
	}
	return "clickatell-rest"
}

// clickatellFault is an error field in any of the shapes Clickatell uses:
// null, a bare string ("Invalid destination address."), a bare code, or an
// object {"code": "001" | 1, "description": "..."}. An empty shape (null,
// false, "", {}) is no error.
type clickatellFault struct {
	Code        string
	Description string
}

func (f clickatellFault) set() bool { return f.Code != "" || f.Description != "" }

func (f *clickatellFault) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*f = clickatellFault{}
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '{':
		var o struct {
			Code        flexString `json:"code"`
			Description flexString `json:"description"`
			Message     flexString `json:"message"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		f.Code, f.Description = string(o.Code), string(o.Description)
		if f.Description == "" {
			f.Description = string(o.Message)
		}
	case '[':
		// Not a documented shape; take the first real error so a list of
		// errors still fails the message instead of passing as "no error".
		var list []clickatellFault
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		for _, e := range list {
			if e.set() {
				*f = e
				break
			}
		}
	case '"':
		s, err := jsonString(b)
		if err != nil {
			return err
		}
		f.Description = s
	case 'n', 'f':
		// null or false: no error.
	case 't':
		f.Description = "true"
	default:
		f.Code = string(b)
	}
	return nil
}

// withSiblings fills what the error field lacks from the errorCode and
// errorDescription fields the Platform API sends next to it.
func (f clickatellFault) withSiblings(code, desc flexString) clickatellFault {
	if f.Code == "" {
		f.Code = string(code)
	}
	if f.Description == "" {
		f.Description = string(desc)
	}
	return f
}

// clickatellEntry is one per-recipient result; the REST API and the One API
// use the same field names.
type clickatellEntry struct {
	Accepted         flexBool        `json:"accepted"`
	APIMessageID     flexString      `json:"apiMessageId"`
	To               flexString      `json:"to"`
	Error            clickatellFault `json:"error"`
	ErrorCode        flexString      `json:"errorCode"`
	ErrorDescription flexString      `json:"errorDescription"`
}

func (e clickatellEntry) fault() clickatellFault {
	return e.Error.withSiblings(e.ErrorCode, e.ErrorDescription)
}

// clickatellReply is the union of the REST reply ({"data":{"message":[...]}})
// and the One/Platform reply ({"messages":[...]}); either API's reader takes
// both, so a provider that changes shape does not turn successes into
// failures.
type clickatellReply struct {
	Data *struct {
		Message []clickatellEntry `json:"message"`
	} `json:"data"`
	Messages         []clickatellEntry `json:"messages"`
	Error            clickatellFault   `json:"error"`
	ErrorCode        flexString        `json:"errorCode"`
	ErrorDescription flexString        `json:"errorDescription"`
}

// replyEntries are a reply's per-recipient entries: "messages" (One and
// Platform APIs, decoded apart by decodeClickatellReply), else
// "data"."message" (REST API).
func replyEntries(messages []clickatellEntry, data *struct {
	Message []clickatellEntry `json:"message"`
}) []clickatellEntry {
	if len(messages) > 0 {
		return messages
	}
	if data != nil {
		return data.Message
	}
	return nil
}

var clickatellCodeClasses = map[clickatellAPI]map[string]errClass{
	apiREST: {
		"001": classAuth, "002": classAuth, "003": classAuth, "005": classAuth, "007": classAuth, "108": classAuth,
		"301": classCredit,
		"105": classDestination, "114": classDestination, "121": classDestination, "128": classDestination,
		"130": classThrottled,
	},
	apiOne: {
		"1": classAuth, "7": classAuth,
		"20": classCredit,
		"25": classDestination, "26": classDestination,
		"43": classThrottled,
	},
	// The Platform API is the One API's predecessor on the same host and
	// shares its integer numbering for these codes.
	apiPlatform: {
		"1": classAuth, "7": classAuth,
		"20": classCredit,
		"25": classDestination, "26": classDestination,
		"43": classThrottled,
	},
}

// normalizeCode makes "001", "1" and 1 comparable within one API's table:
// REST codes are three digits, One API codes plain integers.
func normalizeCode(api clickatellAPI, code string) string {
	code = strings.TrimSpace(code)
	if code == "" || strings.Trim(code, "0123456789") != "" {
		return code
	}
	if api == apiOne || api == apiPlatform {
		if t := strings.TrimLeft(code, "0"); t != "" {
			return t
		}
		return "0"
	}
	if len(code) < 3 {
		code = strings.Repeat("0", 3-len(code)) + code
	}
	return code
}

// clickatellError maps one upstream failure onto a legacy *Error. The code
// wins over the HTTP status because the One API reports throttling as 400
// with code 43; the status decides when the code is unknown or absent.
func clickatellError(api clickatellAPI, status int, f clickatellFault, mk masker) *Error {
	code := normalizeCode(api, f.Code)
	class, ok := clickatellCodeClasses[api][code]
	if !ok && code == "" && strings.HasPrefix(strings.ToLower(f.Description), "invalid destination") {
		// The Platform API's per-message error is sometimes only this
		// sentence, with no code at all.
		class, ok = classDestination, true
	}
	if !ok {
		class = httpStatusClasses[status]
	}
	return legacyError(class, status, f.set(), upstreamCause(api, status, f.Code, f.Description, mk))
}

// entryNumber is the recipient a reply entry names, in Message.To form, or ""
// when it names none we can compare.
func entryNumber(to string) string {
	to = strings.TrimPrefix(strings.TrimSpace(to), "+")
	if to == "" || strings.Trim(to, "0123456789") != "" {
		return ""
	}
	return to
}

// matchEntries pairs each recipient with its reply entry, filling out (one
// per recipient) with the entry's index, -1 for none: by number first,
// because nothing promises the reply keeps request order, then by position
// for entries whose "to" is missing or formatted differently. (Indexes,
// not pointers, so the entries can stay on the caller's stack.)
func matchEntries(to []string, entries []clickatellEntry, out []int) {
	for i := range out {
		out[i] = -1
	}
	var usedBuf [8]bool
	var used []bool
	if len(entries) > len(usedBuf) {
		used = make([]bool, len(entries))
	} else {
		used = usedBuf[:len(entries)]
	}
	for j := range entries {
		n := entryNumber(string(entries[j].To))
		if n == "" {
			continue
		}
		for i := range to {
			if out[i] < 0 && to[i] == n {
				out[i], used[j] = j, true
				break
			}
		}
	}
	for i := range to {
		if out[i] < 0 && i < len(entries) && !used[i] {
			out[i], used[i] = i, true
		}
	}
}

// readClickatell reads a REST or One API reply into a Result with one
// Recipient per m.To, in order.
func readClickatell(api clickatellAPI, m Message, r Response) Result {
	res := resultFor(m)
	ok := r.Status >= 200 && r.Status <= 299
	var fold [256]byte
	mk := newMaskerInto(m.Text, fold[:0])

	var spare [2]clickatellEntry
	body, messages, err := decodeClickatellReply(r.Body, m.To, spare[:0])
	if err != nil {
		for i := range res.Recipients {
			if ok {
				// A 2xx means the provider took the request; without a
				// readable body we cannot say what it did with it. The
				// decoder quotes numbers it cannot place ("cannot
				// unmarshal number 4477..."): provider content.
				res.Recipients[i].Err = unknownError(api, r.Status, "reply is not readable JSON: "+mk.clean(err.Error(), MaxProviderErrorDetail))
			} else {
				res.Recipients[i].Err = clickatellError(api, r.Status, clickatellFault{}, mk)
			}
		}
		return res
	}

	var matchBuf [4]int
	var matched []int
	if len(m.To) > len(matchBuf) {
		matched = make([]int, len(m.To))
	} else {
		matched = matchBuf[:len(m.To)]
	}
	entries := replyEntries(messages, body.Data)
	matchEntries(m.To, entries, matched)
	entry := func(i int) *clickatellEntry {
		if matched[i] < 0 {
			return nil
		}
		return &entries[matched[i]]
	}
	top := body.Error.withSiblings(body.ErrorCode, body.ErrorDescription)
	if top.set() || !ok && len(entries) == 0 {
		for i := range res.Recipients {
			if e := entry(i); e != nil && e.Accepted.val && e.APIMessageID != "" {
				// The reply both accepts this recipient and reports a
				// global error; it may well have been sent.
				res.Recipients[i].Err = unknownError(api, r.Status, "entry accepted despite a top-level error")
				continue
			}
			res.Recipients[i].Err = clickatellError(api, r.Status, top, mk)
		}
		return res
	}

	for i := range res.Recipients {
		rc := &res.Recipients[i]
		e := entry(i)
		switch {
		case e == nil && ok:
			rc.Err = unknownError(api, r.Status, "reply has no entry for this recipient")
		case e == nil:
			rc.Err = clickatellError(api, r.Status, clickatellFault{}, mk)
		case e.Accepted.val && e.APIMessageID == "":
			// Accepted without an id: sent, but ISE must not get "ID: ".
			rc.ID = acceptedID
		case e.Accepted.val, !e.Accepted.set && e.APIMessageID != "" && !e.fault().set():
			rc.ID, rc.Err = mk.messageID(api, r.Status, string(e.APIMessageID), m.To)
		default:
			rc.Err = clickatellError(api, r.Status, e.fault(), mk)
		}
	}
	return res
}
