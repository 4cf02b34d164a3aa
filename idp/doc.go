// Package idp is the contract between Ponte's OpenID Connect core and its login
// methods. It defines what a login proves (Identity, at a Level), what a method
// must implement to plug in (Authenticator), and what the core offers a method
// while a user logs in (Host). It uses the standard library only, so that an
// adapter (adapters/pin, adapters/spid, adapters/cns) depends on nothing of the
// core but this contract. The provider itself lives in idp/provider.
package idp
