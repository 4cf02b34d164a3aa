package spid

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/beevik/etree"
)

// SAML metadata validity (saml-metadata-2.0-os §2.3.1, §2.3.2): an
// EntitiesDescriptor or EntityDescriptor may say until when it is valid
// (validUntil, an xs:dateTime) and how long it may be cached
// (cacheDuration, an xs:duration). Both apply to the element and everything
// in it.

// metadataValidity is what a metadata document says of its own life.
type metadataValidity struct {
	// CacheDuration is the shortest cacheDuration in the document; 0 when
	// none is given.
	CacheDuration time.Duration
}

// checkValidity refuses a document whose root, or an EntitiesDescriptor or
// EntityDescriptor in it, is past its validUntil at now, or carries a
// validUntil or cacheDuration that does not parse; it returns the shortest
// cacheDuration.
func checkValidity(root *etree.Element, now time.Time) (metadataValidity, error) {
	var v metadataValidity
	els := append([]*etree.Element{root}, root.FindElements(".//EntitiesDescriptor")...)
	els = append(els, root.FindElements(".//EntityDescriptor")...)
	for _, el := range els {
		if !is(el, nsMetadata, "EntitiesDescriptor") && !is(el, nsMetadata, "EntityDescriptor") {
			continue
		}
		what := el.Tag
		if id := el.SelectAttrValue("entityID", ""); id != "" {
			what += " " + id
		}
		if s, ok := attr(el, "validUntil"); ok {
			until, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return metadataValidity{}, fmt.Errorf("%s: validUntil %q is not an xs:dateTime with a time zone", what, s)
			}
			if !now.Before(until) {
				return metadataValidity{}, fmt.Errorf("%s: no longer valid since %s (validUntil)", what, until.UTC().Format(time.RFC3339))
			}
		}
		if s, ok := attr(el, "cacheDuration"); ok {
			d, err := parseXSDuration(s)
			if err != nil {
				return metadataValidity{}, fmt.Errorf("%s: cacheDuration: %w", what, err)
			}
			if v.CacheDuration == 0 || d < v.CacheDuration {
				v.CacheDuration = d
			}
		}
	}
	return v, nil
}

// xsDuration is an xs:duration (XML Schema 2 §3.2.6): PnYnMnDTnHnMnS, each
// part optional but at least one, seconds with a fraction.
var xsDuration = regexp.MustCompile(`^(-)?P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?)?$`)

// parseXSDuration reads a positive xs:duration. A year counts as 365 days
// and a month as 30: a cache bound, where a day more or less is no matter.
func parseXSDuration(s string) (time.Duration, error) {
	m := xsDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || s[len(s)-1] == 'T' {
		return 0, fmt.Errorf("%q is not an xs:duration", s)
	}
	if m[1] == "-" {
		return 0, fmt.Errorf("%q is negative", s)
	}
	units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute}
	var total time.Duration
	for i, u := range units {
		if m[i+2] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+2], 10, 64)
		if err != nil || n > int64(maxCacheDuration/u) {
			return 0, fmt.Errorf("%q is too long", s)
		}
		if total += time.Duration(n) * u; total > maxCacheDuration {
			return 0, fmt.Errorf("%q is too long", s)
		}
	}
	if m[7] != "" {
		f, err := strconv.ParseFloat(m[7], 64)
		if err != nil || f > maxCacheDuration.Seconds() {
			return 0, fmt.Errorf("%q is too long", s)
		}
		total += time.Duration(f * float64(time.Second))
	}
	if total > maxCacheDuration {
		return 0, fmt.Errorf("%q is too long", s)
	}
	if total <= 0 {
		return 0, errors.New("a duration of zero")
	}
	return total, nil
}

// maxCacheDuration bounds what parseXSDuration reads (no overflow); a
// longer cacheDuration bounds nothing anyway.
const maxCacheDuration = 100 * 365 * 24 * time.Hour
