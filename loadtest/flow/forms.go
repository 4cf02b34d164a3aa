package flow

import (
	"html"
	"net/url"
	"regexp"
)

var (
	formTag     = regexp.MustCompile(`(?s)<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	inputTag    = regexp.MustCompile(`<input\b[^>]*>`)
	inputName   = regexp.MustCompile(`\bname="([^"]*)"`)
	inputValue  = regexp.MustCompile(`\bvalue="([^"]*)"`)
	inputHidden = regexp.MustCompile(`\btype="hidden"`)
)

// Form is an HTML form a page holds: where it posts and its hidden fields.
type Form struct {
	Action string
	Hidden url.Values
}

// Forms reads the forms of an HTML page as a browser would post them: each
// form's action and its hidden inputs, entities decoded (html/template
// writes the '+' of base64 as &#43;). Pages Ponte and the test identity
// provider write, not arbitrary HTML.
func Forms(page string) []Form {
	var out []Form
	for _, m := range formTag.FindAllStringSubmatch(page, -1) {
		f := Form{Action: html.UnescapeString(m[1]), Hidden: url.Values{}}
		for _, in := range inputTag.FindAllString(m[2], -1) {
			n := inputName.FindStringSubmatch(in)
			if n == nil || !inputHidden.MatchString(in) {
				continue
			}
			v := ""
			if m := inputValue.FindStringSubmatch(in); m != nil {
				v = html.UnescapeString(m[1])
			}
			f.Hidden.Add(html.UnescapeString(n[1]), v)
		}
		out = append(out, f)
	}
	return out
}

// formWith returns the first form of page with a hidden field named field.
func formWith(page, field string) (Form, bool) {
	for _, f := range Forms(page) {
		if f.Hidden.Has(field) {
			return f, true
		}
	}
	return Form{}, false
}
