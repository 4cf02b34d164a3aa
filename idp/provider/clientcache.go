package provider

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/storage"
)

// clientCache keeps relying parties in memory, as fosite sees them (secret
// hash, redirect URIs, parsed JWKS), for fosite reads a client up to five
// times in one token request. It is correct across nodes and processes: every
// read first checks storage.Clients.ClientsVersion, a counter the database
// moves with every change to a client whoever makes it (another node, `ponte
// client`), and drops everything when it moved. Within one HTTP request the
// counter is read once (withRequestMemo), so a request sees the clients as
// they were when it first needed one, never older.
type clientCache struct {
	store storage.Clients
	now   func() time.Time

	mu      sync.RWMutex
	version int64
	byID    map[string]*client
}

// maxCachedClients bounds the cache; beyond it, it starts again. Only
// registered clients enter it, so the bound is never reached in practice.
const maxCachedClients = 10_000

func newClientCache(s storage.Clients, now func() time.Time) *clientCache {
	return &clientCache{store: s, now: now, byID: map[string]*client{}}
}

// get returns the client as of the current version, reading it from storage
// when the cache lacks it. An unknown client is storage.ErrNotFound, and is
// not remembered.
//
// While the database is unavailable (the version cannot be read) a client
// already in the cache is still given as last known, so that /authorize can
// verify its redirect URI and answer temporarily_unavailable there (RFC 6749
// §4.1.2.1) rather than on a page: nothing can be issued meanwhile, since
// every grant needs the database.
func (cc *clientCache) get(ctx context.Context, id string) (*client, error) {
	v, err := cc.currentVersion(ctx)
	if errors.Is(err, storage.ErrUnavailable) {
		cc.mu.RLock()
		c, ok := cc.byID[id]
		cc.mu.RUnlock()
		if ok {
			return c, nil
		}
	}
	if err != nil {
		return nil, err
	}
	cc.mu.RLock()
	c, ok := cc.byID[id]
	fresh := cc.version == v
	cc.mu.RUnlock()
	if ok && fresh {
		return c, nil
	}
	// Read after the version: a client changed in between is newer than v,
	// never older, and the next version read drops it.
	stored, err := cc.store.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	c = newClient(stored, cc.now)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	// Whatever is kept under a version was read after that version was seen,
	// so it is never older than what a request that sees the version expects.
	if cc.version != v || len(cc.byID) >= maxCachedClients {
		cc.version, cc.byID = v, map[string]*client{}
	}
	cc.byID[id] = c
	return c, nil
}

// currentVersion is the clients' version, read once per request memo (and on
// every call without one).
func (cc *clientCache) currentVersion(ctx context.Context) (int64, error) {
	m := memoFrom(ctx)
	if m == nil {
		return cc.store.ClientsVersion(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.versionRead {
		v, err := cc.store.ClientsVersion(ctx)
		if err != nil {
			return 0, err
		}
		m.version, m.versionRead = v, true
	}
	return m.version, nil
}

// requestMemo is what one HTTP request remembers of storage: the clients'
// version, and the token records it has read with the request decoded from
// each (fosite reads an authorization code three times in one token request).
// Writes through fositeStore keep it true: a record deleted is forgotten, one
// marked used is remembered so (and stays so should the transaction roll
// back: the memo errs on the side of refusing).
type requestMemo struct {
	mu          sync.Mutex
	versionRead bool
	version     int64
	tokens      map[memoKey]memoEntry
}

type memoKey struct {
	kind storage.TokenKind
	key  string // the hashed storage key
}

// memoEntry is a token record read in this request, and the request last
// decoded from it into session.
type memoEntry struct {
	token   storage.Token
	request *fosite.AuthorizeRequest
	session fosite.Session
	// openID and pkce: a code's record that holds its OpenID Connect
	// request, its PKCE challenge.
	openID, pkce bool
}

type memoCtxKey struct{}

// withRequestMemo gives every request its own memo.
func withRequestMemo(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), memoCtxKey{}, &requestMemo{})
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func memoFrom(ctx context.Context) *requestMemo {
	m, _ := ctx.Value(memoCtxKey{}).(*requestMemo)
	return m
}

// entry returns what is remembered of a token record.
func (m *requestMemo) entry(k memoKey) (memoEntry, bool) {
	if m == nil {
		return memoEntry{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.tokens[k]
	return e, ok
}

// remember keeps a token record and the request decoded from it.
func (m *requestMemo) remember(k memoKey, e memoEntry) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[memoKey]memoEntry{}
	}
	m.tokens[k] = e
}

// forget drops a record about to be deleted.
func (m *requestMemo) forget(k memoKey) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tokens, k)
}

// deactivated marks a remembered record used.
func (m *requestMemo) deactivated(k memoKey) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.tokens[k]; ok {
		e.token.Active = false
		m.tokens[k] = e
	}
}
