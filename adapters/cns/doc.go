// Package cns is the CNS login method (SPEC §5): a citizen logs in with the
// certificate of a Carta Nazionale dei Servizi — a TS-CNS health card, or a
// CNS on a signature token — presented as a TLS client certificate, and
// reaches the dispositivo level, linked by codice fiscale to the same subject
// as every other method.
//
// It owns the whole judgement of a card: the chain to the configured CNS
// certificate authorities, the validity period, key usage digitalSignature
// and extended key usage clientAuth, the CNS certificate policy on the leaf,
// revocation by CRL and OCSP (fail-closed by default, answers cached in a
// bounded cache), and the codice fiscale read from the subject and checked
// with its check character (internal/codicefiscale, as written: never
// normalised). It reads the chain through idp.Host, wherever
// the core found it: the TLS handshake of the card listener, or the header of
// a TLS-terminating proxy the core trusts for it; it verifies it every time.
//
// The flow crosses two hosts. The chooser's link (/login/cns/?challenge=, on
// the issuer) checks the challenge belongs to the browser and sends it to the
// card listener (Config.CardURL), whose TLS handshake asks for the card. The
// card page there verifies the chain and keeps the identity under a fresh
// single-use key (Host.SaveState), then sends the browser back to the issuer
// (/login/cns/done?r=), where Host.CompleteLogin starts the session only in
// the browser that made the challenge. The identity is never attached to the
// challenge itself, so a card link forwarded to someone else (a phishing
// mail carrying the attacker's challenge) logs nobody in: the card holder's
// browser did not make the challenge, and the attacker never sees the key.
package cns
