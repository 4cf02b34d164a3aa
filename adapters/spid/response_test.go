package spid

import (
	"errors"
	"testing"

	"github.com/beevik/etree"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
)

// TestEmptyAttributeValue: an attribute whose value is empty or blank is
// refused by Ponte's own rule (issue 10: "empty attributes"), not left to a
// later check; the reason names the attribute. TestCraftedResponses sends
// the same over HTTP.
func TestEmptyAttributeValue(t *testing.T) {
	fx := fuzzFixture(t)
	for _, tc := range []struct{ attr, value string }{
		{"name", ""}, {"familyName", " \n\t "}, {"spidCode", ""}, {"fiscalNumber", ""},
	} {
		t.Run(tc.attr, func(t *testing.T) {
			raw, err := fx.tidp.Build(testidp.Response{RequestID: fx.st.ID, User: fuzzUser, Mutate: func(_, a *etree.Element) {
				a.FindElement("./AttributeStatement/Attribute[@Name='" + tc.attr + "']/AttributeValue").SetText(tc.value)
			}})
			if err != nil {
				t.Fatal(err)
			}
			root, err := parseXML(raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = fx.v.validate(root, fx.st, fx.idp, fx.at)
			var an *anomaly
			if !errors.As(err, &an) || an.Rule != "AttributeStatement/Attribute/AttributeValue" {
				t.Fatalf("%v, want the empty-value anomaly", err)
			}
			if want := tc.attr + " is empty"; an.Err.Error() != want {
				t.Fatalf("reason %q, want %q", an.Err, want)
			}
		})
	}
}
