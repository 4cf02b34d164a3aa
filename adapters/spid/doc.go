// Package spid is SPID level 2 as a Ponte login method: Ponte as a SPID
// Service Provider (SPEC §4), built on github.com/crewjam/saml and hardened
// to the SPID technical rules (AgID "Regole tecniche", notices 11 and 29 v3).
//
// It owns the SP's signed metadata (served at /login/spid/metadata), the
// AuthnRequests (SpidL2, signed, their IDs kept single-use with the level
// asked through Host.SaveState), the login URL that goes straight to one
// identity provider (from its own shuffled list or from idp_hint), the
// assertion consumer service (a cross-site path that completes through
// Host.ReturnLogin), single logout in both directions, and the registry of
// identity providers (files or the registry's URL, signature checked,
// refreshed by its runner). A response is checked by Ponte's own rules first
// (response.go: structure, the assertion's signature always, only signed
// elements read, times, audience, recipient, level, attributes), then by
// crewjam; any anomaly gets a 403 courtesy page. The citizen is linked by
// fiscalNumber (TINIT-<codice fiscale>) to the same subject as every other
// method; the transient NameID is never an identity.
//
// The package testidp is an in-process SPID identity provider for
// development, demos and tests.
package spid
