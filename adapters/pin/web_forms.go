package pin

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// field is one input of a form, with its label, hint and error.
type field struct {
	Name, Label, Hint, Type, Value, Autocomplete, Accept string
	Required                                             bool
	// Plain marks a code typed as it is written (no capitalization, no spelling).
	Plain     bool
	Maxlength int
	Options   []option
	// Error is what is wrong with the value, and what to do.
	Error string
	// Describedby names the hint and the error (describe sets it).
	Describedby string
}

type option struct{ Value, Label string }

// describe ties the hint and the error to the input for assistive technology.
func (f *field) describe() {
	var ids []string
	if f.Hint != "" {
		ids = append(ids, "f-"+f.Name+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, "f-"+f.Name+"-error")
	}
	f.Describedby = strings.Join(ids, " ")
}

func (v loginView) described() loginView {
	for i := range v.Fields {
		v.Fields[i].describe()
	}
	return v
}

// fieldset is a group of fields under a legend ("" for none).
type fieldset struct {
	Legend string
	Fields []field
}

// fieldError is an error of the form: its text, and the field it points to.
type fieldError struct{ Field, Text string }

// formView is a form of the PIN's lifecycle.
type formView struct {
	Nav       nav
	Intro     []para
	Boxes     []box
	Action    string
	Button    string
	Multipart bool
	Errors    []fieldError
	Sections  []fieldset
	After     []para
}

// form fills in the links and ties hints and errors to the inputs.
func (w *web) form(rw http.ResponseWriter, r *http.Request, v visit, status int, titleKey string, view formView) {
	view.Nav = w.nav(v)
	for i := range view.Sections {
		for j := range view.Sections[i].Fields {
			view.Sections[i].Fields[j].describe()
		}
	}
	w.render(rw, r, v, status, "form", titleKey, view)
}

// optional marks a field's label as optional.
func optional(t map[string]string, label string) string { return label + " (" + t["optional"] + ")" }

// options are the choices of a select, labelled in the page's language.
func options(t map[string]string, values ...string) []option {
	out := make([]option, 0, len(values))
	for _, v := range values {
		label := t["o_"+v]
		if label == "" {
			label = v
		}
		out = append(out, option{v, label})
	}
	return out
}

// personFields are the identity fields of the request and revocation forms.
func personFields(t map[string]string, r *http.Request) []field {
	v := r.PostFormValue
	return []field{
		{Name: "fiscal_number", Label: t["f_cf"], Hint: t["cf_hint"], Type: "text", Value: v("fiscal_number"), Required: true, Maxlength: 16, Plain: true},
		{Name: "given_name", Label: t["f_given"], Type: "text", Value: v("given_name"), Required: true, Autocomplete: "given-name"},
		{Name: "family_name", Label: t["f_family"], Type: "text", Value: v("family_name"), Required: true, Autocomplete: "family-name"},
		{Name: "gender", Label: t["f_gender"], Type: "select", Value: v("gender"), Required: true, Options: options(t, "", "M", "F")},
		{Name: "birthdate", Label: t["f_birthdate"], Hint: t["f_birthdate_hint"], Type: "date", Value: v("birthdate"), Required: true, Autocomplete: "bday"},
		{Name: "birth_place", Label: t["f_birthplace"], Type: "text", Value: v("birth_place"), Required: true},
	}
}

// requestSections are the fields of the online request form, filled from r.
func requestSections(t map[string]string, r *http.Request) []fieldset {
	v := r.PostFormValue
	return []fieldset{
		{Legend: t["sec_person"], Fields: append(personFields(t, r),
			field{Name: "italian_id", Label: t["f_itid"], Type: "checkbox", Value: boolValue(v("italian_id"))})},
		{Legend: t["sec_residence"], Fields: []field{
			{Name: "abroad", Label: t["f_abroad"], Type: "checkbox", Value: boolValue(v("abroad"))},
			{Name: "street", Label: t["f_street"], Type: "text", Value: v("street"), Required: true, Autocomplete: "address-line1"},
			{Name: "number", Label: t["f_number"], Type: "text", Value: v("number"), Required: true},
			{Name: "postal_code", Label: t["f_cap"], Hint: t["f_cap_hint"], Type: "text", Value: v("postal_code"), Autocomplete: "postal-code"},
			{Name: "city", Label: t["f_city"], Type: "text", Value: v("city"), Required: true, Autocomplete: "address-level2"},
			{Name: "province", Label: t["f_province"], Hint: t["f_province_hint"], Type: "text", Value: v("province"), Maxlength: 2},
			{Name: "country", Label: t["f_country"], Type: "text", Value: v("country"), Autocomplete: "country-name"},
		}},
		{Legend: t["sec_contacts"], Fields: []field{
			{Name: "mobile", Label: t["f_mobile"], Hint: t["f_phone_hint"], Type: "tel", Value: v("mobile"), Autocomplete: "tel"},
			{Name: "phone", Label: optional(t, t["f_phone"]), Type: "tel", Value: v("phone")},
			{Name: "email", Label: t["f_email"], Type: "email", Value: v("email"), Required: true, Autocomplete: "email"},
			{Name: "pec", Label: optional(t, t["f_pec"]), Type: "email", Value: v("pec")},
			{Name: "preferred_phone", Label: t["f_pref_phone"], Hint: t["f_pref_hint"], Type: "tel", Value: v("preferred_phone"), Required: true},
			{Name: "callback_slot", Label: t["f_slot"], Type: "select", Value: v("callback_slot"), Required: true, Options: options(t, CallbackSlots...)},
			{Name: "first_half_via", Label: t["f_via"], Type: "select", Value: v("first_half_via"), Required: true, Options: options(t, "sms", "email", "pec", "post")},
		}},
	}
}

func boolValue(v string) string {
	if v == "yes" {
		return "yes"
	}
	return ""
}

// requestFromForm reads a Request from a posted form.
func requestFromForm(r *http.Request) Request {
	v := r.PostFormValue
	return Request{
		FiscalNumber: v("fiscal_number"), GivenName: v("given_name"), FamilyName: v("family_name"),
		Gender: v("gender"), Birthdate: v("birthdate"), BirthPlace: v("birth_place"),
		ResidenceAbroad: v("abroad") == "yes", HasItalianID: v("italian_id") == "yes",
		Residence: storage.Address{Street: v("street"), Number: v("number"), PostalCode: v("postal_code"),
			City: v("city"), Province: v("province"), Country: v("country")},
		Mobile: v("mobile"), Phone: v("phone"), Email: v("email"), PEC: v("pec"),
		PreferredPhone: v("preferred_phone"), CallbackSlot: v("callback_slot"), FirstHalfVia: v("first_half_via"),
	}
}

// alternatives are the links for a citizen who cannot have a PIN: SPID, CNS,
// and the chooser of the pending login.
func (w *web) alternatives(v visit) []link {
	t, n := v.t(), w.nav(v)
	out := []link{{URL: spidInfoURL, Text: t["spid_info"], Lang: "it"}, {URL: cnsInfoURL, Text: t["cns_info"], Lang: "it"}}
	if n.Chooser != "" {
		out = append(out, link{URL: n.Chooser, Text: t["other_methods"]})
	}
	return out
}

func (w *web) requestView(v visit, r *http.Request, errs []fieldError) formView {
	t := v.t()
	view := formView{Intro: []para{{Text: t["request_intro"]}}, Action: w.url("/request"), Button: t["request_button"],
		Sections: requestSections(t, r), Errors: errs}
	if !w.s.now().Before(w.s.cfg.RequestCutoff.Time) {
		view.Boxes = []box{{Kind: "notice", Paras: []para{{Text: t["policy_intro"], Links: w.alternatives(v)}}}}
	}
	for _, e := range errs {
		for i := range view.Sections {
			for j := range view.Sections[i].Fields {
				if f := &view.Sections[i].Fields[j]; f.Name == e.Field && f.Error == "" {
					f.Error = e.Text
				}
			}
		}
	}
	return view
}

func (w *web) requestForm(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	w.form(rw, r, v, http.StatusOK, "request_title", w.requestView(v, r, nil))
}

// request registers an online PIN request.
func (w *web) request(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	v := w.postVisit(r)
	t := v.t()
	_, err := w.s.RequestPIN(v.ctx(r), requestFromForm(r), ChannelOnline, "", clientIP(r))
	if err == nil {
		// Issuing hashes a new PIN; parking or warning does not: the answer
		// takes the same time either way, so it tells no one whether the
		// codice fiscale has an account.
		padTo(r.Context(), start, noEnumerationFloor)
	}
	switch {
	case w.limited(rw, r, v, "request_title", err):
	case err == nil:
		w.redirectDone(rw, r, v, "requested")
	case errors.Is(err, ErrPolicy):
		w.notice(rw, r, v, http.StatusOK, "request_title", noticeView{Boxes: []box{{Kind: "warning", Paras: []para{{Text: t["policy"], Links: w.alternatives(v)}}}}})
	case errors.Is(err, ErrInvalidRequest):
		w.form(rw, r, v, http.StatusUnprocessableEntity, "request_title", w.requestView(v, r, formErrors(t, err)))
	default:
		if w.down(rw, r, "PIN request failed", err) {
			return
		}
		w.s.log.ErrorContext(r.Context(), "PIN request failed", "err", err)
		w.fail(rw, r, v, http.StatusInternalServerError, "request_title", t["internal"])
	}
}

// anchors are the inputs an error about a group of fields points to.
var anchors = map[string]string{
	"residence/" + ProblemRequired: "street", "residence/" + ProblemItalian: "postal_code",
	"residence_country/" + ProblemRequired: "country", "phone/" + ProblemRequired: "mobile",
}

// formOrder is the order of the request form's fields, for its errors.
var formOrder = []string{"fiscal_number", "given_name", "family_name", "gender", "birthdate", "birth_place", "italian_id",
	"abroad", "street", "number", "postal_code", "city", "province", "country",
	"mobile", "phone", "email", "pec", "preferred_phone", "callback_slot", "first_half_via"}

// formErrors turns the request's field errors into sentences of the page's
// language, each pointing to its input, in the order of the form.
func formErrors(t map[string]string, err error) []fieldError {
	var out []fieldError
	for _, fe := range fieldErrorsOf(err) {
		text := t["e_"+fe.Field+"_"+fe.Problem]
		if text == "" {
			text = t["e_"+fe.Problem]
		}
		if text == "" {
			text = t["e_other"]
		}
		anchor := fe.Field
		if a, ok := anchors[fe.Field+"/"+fe.Problem]; ok {
			anchor = a
		}
		out = append(out, fieldError{Field: anchor, Text: text})
	}
	slices.SortStableFunc(out, func(a, b fieldError) int {
		return slices.Index(formOrder, a.Field) - slices.Index(formOrder, b.Field)
	})
	return out
}

// fieldErrorsOf lists the request's field errors.
func fieldErrorsOf(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		var fe *FieldError
		if errors.As(e, &fe) && e == error(fe) {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
		}
	}
	walk(err)
	return out
}

// fieldErrors lists the request's field errors in English, for the operators' API.
func fieldErrors(err error) []string {
	var out []string
	for _, fe := range fieldErrorsOf(err) {
		out = append(out, fe.Error())
	}
	return out
}

func (w *web) activateView(v visit, r *http.Request, errs ...box) formView {
	t := v.t()
	return formView{Intro: []para{{Text: t["activate_intro"]}}, Action: w.url("/activate"), Button: t["activate_button"], Boxes: errs,
		Sections: []fieldset{{Fields: []field{
			{Name: "fiscal_number", Label: t["f_cf"], Hint: t["cf_hint"], Type: "text", Value: r.PostFormValue("fiscal_number"), Required: true, Maxlength: 16, Plain: true, Autocomplete: "username"},
			{Name: "first_half", Label: t["f_first_half"], Hint: t["f_first_half_hint"], Type: "password", Required: true, Maxlength: 8, Autocomplete: "one-time-code"},
			{Name: "card_number", Label: t["f_card"], Hint: t["f_card_hint"], Type: "text", Required: true, Maxlength: 24},
			{Name: "card_expiry", Label: t["f_card_exp"], Hint: t["f_card_exp_hint"], Type: "month", Required: true},
		}}}}
}

func (w *web) activateForm(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	w.form(rw, r, v, http.StatusOK, "activate_title", w.activateView(v, r))
}

func (w *web) activate(rw http.ResponseWriter, r *http.Request) {
	v := w.postVisit(r)
	t := v.t()
	f := r.PostFormValue
	err := w.s.Activate(v.ctx(r), f("fiscal_number"), f("first_half"), f("card_number"), f("card_expiry"), clientIP(r))
	var throttled *ThrottledError
	switch {
	case w.limited(rw, r, v, "activate_title", err):
	case err == nil:
		w.redirectDone(rw, r, v, "activated")
	case errors.As(err, &throttled):
		w.form(rw, r, v, http.StatusUnprocessableEntity, "activate_title", w.activateView(v, r, w.throttledBox(v, throttled)))
	case errors.Is(err, ErrBadCredentials):
		w.form(rw, r, v, http.StatusUnprocessableEntity, "activate_title", w.activateView(v, r, errorBox(t["activate_failed"])))
	default:
		if w.down(rw, r, "PIN activation failed", err) {
			return
		}
		w.s.log.ErrorContext(r.Context(), "PIN activation failed", "err", err)
		w.fail(rw, r, v, http.StatusInternalServerError, "activate_title", t["internal"])
	}
}

func (w *web) recoverForm(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	t, n := v.t(), w.nav(v)
	w.form(rw, r, v, http.StatusOK, "recover_title", formView{Intro: []para{{Text: t["recover_intro"]}},
		Boxes:  []box{{Kind: "notice", Paras: []para{{Text: t["recover_revoca"], Links: []link{{URL: n.Revoke, Text: t["revoke_title"]}}}}}},
		Action: w.url("/recover"), Button: t["recover_button"], Sections: []fieldset{{Fields: []field{
			{Name: "fiscal_number", Label: t["f_cf"], Hint: t["cf_hint"], Type: "text", Required: true, Maxlength: 16, Plain: true, Autocomplete: "username"},
			{Name: "mobile", Label: t["f_mobile"], Type: "tel", Autocomplete: "tel"},
			{Name: "email", Label: t["f_email"], Type: "email", Autocomplete: "email"},
			{Name: "pec", Label: t["f_pec"], Type: "email"},
		}}}})
}

// recover starts a ripristino; the answer is the same, and takes the same
// time, whether or not anything matched.
func (w *web) recover(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	v := w.postVisit(r)
	f := r.PostFormValue
	err := w.s.StartRecovery(v.ctx(r), f("fiscal_number"), Contacts{Mobile: f("mobile"), Email: f("email"), PEC: f("pec")}, clientIP(r))
	if w.limited(rw, r, v, "recover_title", err) {
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		// Not done, for anyone: the database is away. The citizen is told to
		// come back (the same answer whoever they are, after the same time).
		padTo(r.Context(), start, noEnumerationFloor)
		w.down(rw, r, "PIN recovery", err)
		return
	}
	if err != nil {
		w.s.log.ErrorContext(r.Context(), "PIN recovery failed", "err", err)
	}
	padTo(r.Context(), start, noEnumerationFloor)
	w.redirectDone(rw, r, v, "recovery_sent")
}

// recoverConfirmForm asks for a click before the link is consumed, so that a
// mail scanner that fetches links does not use it up.
func (w *web) recoverConfirmForm(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	t := v.t()
	w.notice(rw, r, v, http.StatusOK, "recover_title", noticeView{Boxes: []box{{Kind: "notice", Paras: []para{{Text: t["recover_confirm"]}}}},
		Action: w.url(RecoverConfirmPath), Button: t["recover_button2"],
		Hidden: map[string]string{"code": r.URL.Query().Get("code"), "challenge": v.challenge}})
}

func (w *web) recoverConfirm(rw http.ResponseWriter, r *http.Request) {
	v := w.postVisit(r)
	t := v.t()
	err := w.s.CompleteRecovery(v.ctx(r), r.PostFormValue("code"))
	switch {
	case err == nil:
		w.redirectDone(rw, r, v, "recovered")
	case errors.Is(err, ErrExpiredCode), errors.Is(err, ErrRevoked):
		w.fail(rw, r, v, http.StatusBadRequest, "recover_title", t["code_expired"], link{URL: w.nav(v).Recover, Text: t["recover_title"]})
	default:
		if w.down(rw, r, "PIN recovery completion failed", err) {
			return
		}
		w.s.log.ErrorContext(r.Context(), "PIN recovery completion failed", "err", err)
		w.fail(rw, r, v, http.StatusInternalServerError, "recover_title", t["internal"])
	}
}

func (w *web) revokeForm(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	t := v.t()
	w.form(rw, r, v, http.StatusOK, "revoke_title", formView{Intro: []para{{Text: t["revoke_intro"]}},
		Boxes:  []box{{Kind: "notice", Paras: []para{{Text: t["revoke_keep"]}}}},
		Action: w.url("/revoke"), Button: t["revoke_button"], Sections: []fieldset{{Fields: personFields(t, r)}}})
}

// revoke is the online revoca; like recovery it reveals nothing.
func (w *web) revoke(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	v := w.postVisit(r)
	err := w.s.RevokeOnline(v.ctx(r), requestFromForm(r), clientIP(r))
	if w.limited(rw, r, v, "revoke_title", err) {
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		// Not done, for anyone: the database is away. The citizen is told to
		// come back (the same answer whoever they are, after the same time).
		padTo(r.Context(), start, noEnumerationFloor)
		w.down(rw, r, "PIN revocation", err)
		return
	}
	if err != nil {
		w.s.log.ErrorContext(r.Context(), "PIN revocation failed", "err", err)
	}
	padTo(r.Context(), start, noEnumerationFloor)
	w.redirectDone(rw, r, v, "revoke_started")
}
