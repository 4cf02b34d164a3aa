package pin

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"

	"github.com/ponte-id/ponte/internal/ui"
)

// module is the request form for a conversion, to print, sign and upload: a
// page of its own, without the site's layout, bilingual like the form INPS
// prints.
var module = template.Must(template.ParseFS(templateFS, "templates/module.html"))

func (w *web) convertView(v visit, boxes ...box) formView {
	t, n := v.t(), w.nav(v)
	limit := fmt.Sprintf(t["upload_hint"], sizeText(w.s.cfg.MaxUpload))
	return formView{Intro: []para{{Text: t["convert_intro"]}, {Links: []link{{URL: n.ConvertForm, Text: t["convert_form"]}}}},
		Boxes: boxes, Action: w.url("/convert"), Button: t["convert_button"], Multipart: true,
		Sections: []fieldset{{Fields: []field{
			{Name: "fiscal_number", Label: t["f_cf"], Hint: t["convert_pin"], Type: "text", Required: true, Autocomplete: "username", Maxlength: 16, Plain: true},
			{Name: "pin", Label: t["f_pin"], Type: "password", Required: true, Autocomplete: "current-password", Maxlength: 16},
			{Name: "form", Label: t["f_form"], Hint: limit, Type: "file", Required: true, Accept: ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"},
			{Name: "document", Label: t["f_doc"], Hint: limit, Type: "file", Required: true, Accept: ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"},
		}}}}
}

func (w *web) convertForm(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	w.form(rw, r, v, http.StatusOK, "convert_title", w.convertView(v))
}

// convert takes the signed form and the identity document from a citizen who
// proves the PIN again on the same form.
func (w *web) convert(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		v := w.visit(r, r.URL.Query().Get("challenge"))
		w.form(rw, r, v, http.StatusRequestEntityTooLarge, "convert_title", w.convertView(v, errorBox(w.uploadBad(v))))
		return
	}
	defer r.MultipartForm.RemoveAll()
	v := w.postVisit(r)
	t := v.t()
	res, err := w.s.Login(v.ctx(r), r.PostFormValue("fiscal_number"), r.PostFormValue("pin"), clientIP(r))
	var throttled *ThrottledError
	switch {
	case errors.Is(err, ErrBusy):
		w.busy(rw)
		w.form(rw, r, v, http.StatusServiceUnavailable, "convert_title", w.convertView(v, errorBox(t["busy"])))
		return
	case errors.As(err, &throttled):
		w.form(rw, r, v, http.StatusOK, "convert_title", w.convertView(v, w.throttledBox(v, throttled)))
		return
	case w.down(rw, r, "PIN conversion login", err):
		return
	case err != nil || res.Change != ChangeNone:
		w.form(rw, r, v, http.StatusOK, "convert_title", w.convertView(v, errorBox(t["bad_credentials"], link{URL: w.nav(v).Recover, Text: t["recover_title"]})))
		return
	}
	form, err1 := readUpload(r, "form", w.s.cfg.MaxUpload)
	doc, err2 := readUpload(r, "document", w.s.cfg.MaxUpload)
	if err1 != nil || err2 != nil {
		w.form(rw, r, v, http.StatusUnprocessableEntity, "convert_title", w.convertView(v, errorBox(w.uploadBad(v))))
		return
	}
	_, err = w.s.SubmitConversion(v.ctx(r), res.Account.FiscalNumber, form, doc)
	switch {
	case err == nil:
		w.redirectDone(rw, r, v, "conversion_sent")
	case errors.Is(err, ErrUpload):
		w.form(rw, r, v, http.StatusUnprocessableEntity, "convert_title", w.convertView(v, errorBox(w.uploadBad(v))))
	default:
		w.s.log.InfoContext(ctx, "PIN conversion refused", "err", err)
		w.fail(rw, r, v, http.StatusOK, "convert_title", t["convert_denied"])
	}
}

// uploadBad says which files are taken, and up to what size.
func (w *web) uploadBad(v visit) string {
	return fmt.Sprintf(v.t()["upload_bad"], sizeText(w.s.cfg.MaxUpload))
}

func readUpload(r *http.Request, name string, limit int64) ([]byte, error) {
	f, _, err := r.FormFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil || int64(len(data)) > limit {
		return nil, ErrUpload
	}
	return data, nil
}

// conversionModule serves the request form to print and sign.
func (w *web) conversionModule(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	howTo := map[string]string{
		"it": "Stampa questa pagina (dal menu del browser, o con Ctrl+P), compilala e firmala; poi caricala con la scansione del documento di identità.",
		"en": "Print this page (from the browser's menu, or with Ctrl+P), fill it in and sign it; then upload it with the scan of your identity document.",
	}
	var buf bytes.Buffer
	err := module.Execute(&buf, struct{ Print, Back, BackText string }{howTo[v.loc], w.nav(v).Convert, v.t()["convert_title"]})
	if err != nil {
		w.s.log.ErrorContext(r.Context(), "rendering the conversion form failed", "err", err)
		w.fail(rw, r, v, http.StatusInternalServerError, "convert_title", v.t()["internal"])
		return
	}
	ui.Write(rw, http.StatusOK, buf.Bytes())
}
