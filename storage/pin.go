package storage

import (
	"context"
	"time"
)

// PINStatus is where a PIN credential is in its life.
type PINStatus string

// The PIN statuses.
const (
	// PINPending: requested; the initial PIN is on its way (and, for a postal
	// first half, waits for activation). It opens nothing.
	PINPending PINStatus = "pending"
	// PINActive: the PIN logs in (after a first-access change if MustChange).
	PINActive PINStatus = "active"
	// PINRevoked: the PIN opens nothing; a new one goes through the request path.
	PINRevoked PINStatus = "revoked"
)

// Address is a postal address.
type Address struct {
	Street     string `json:"street"`
	Number     string `json:"number"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	Province   string `json:"province"`
	Country    string `json:"country"`
}

// PINAccount is a citizen's INPS PIN with the data of its request: the identity
// and contacts the lifecycle (delivery, recovery, revocation) works on.
type PINAccount struct {
	// FiscalNumber is the key: one PIN per citizen.
	FiscalNumber string
	GivenName    string
	FamilyName   string
	Gender       string
	// Birthdate is YYYY-MM-DD; BirthPlace the municipality or foreign country.
	Birthdate       string
	BirthPlace      string
	ResidenceAbroad bool
	Residence       Address
	// Contacts on record.
	Mobile string
	Phone  string
	Email  string
	PEC    string
	// PreferredPhone and CallbackSlot are for an operator's callback.
	PreferredPhone string
	CallbackSlot   string

	// Hash is the PHC-encoded argon2id hash of the current PIN; PreviousHash of
	// the one before, so that a change cannot reuse it.
	Hash         []byte
	PreviousHash []byte
	Status       PINStatus
	Dispositivo  bool
	// MustChange: the PIN is an initial or provisional one (16 characters); it
	// opens only the change form.
	MustChange bool
	// FirstAccessDone: the citizen has once chosen their own PIN (recovery needs it).
	FirstAccessDone bool
	// ChangedAt is when the citizen last set the PIN (expiry counts from it).
	ChangedAt time.Time
	// ActivationHash is the hash of the half that activation must present, while
	// the account waits for activation; empty otherwise.
	ActivationHash []byte
	// ReplacementHash is the hash of a 16-character PIN sent, after an online
	// revoca, to the contacts and residence on record; ReplacementAt when. The
	// current PIN keeps working until the replacement is first used. Empty otherwise.
	ReplacementHash []byte
	ReplacementAt   time.Time
	// Channel is how the PIN was requested (online, contact_center, sede); Operator who registered it.
	Channel   string
	Operator  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PINAccounts stores PIN accounts.
type PINAccounts interface {
	// CreatePINAccount returns ErrConflict if the citizen has one.
	CreatePINAccount(ctx context.Context, a PINAccount) error
	GetPINAccount(ctx context.Context, fiscalNumber string) (PINAccount, error)
	// UpdatePINAccount applies fn atomically; fn's error aborts.
	UpdatePINAccount(ctx context.Context, fiscalNumber string, fn func(PINAccount) (PINAccount, error)) error
	// ReplacePINAccount overwrites (or creates) the account: a new request after revocation.
	ReplacePINAccount(ctx context.Context, a PINAccount) error
}

// Attempt is the state of one throttling counter after a reservation.
type Attempt struct {
	Key string
	// Count includes the attempt just reserved.
	Count int
	// At is when it was reserved; Prev when the attempt before it was (zero if none).
	At   time.Time
	Prev time.Time
}

// Attempts counts attempts per key ("cf:<fiscal number>", "ip:<address>", or a
// rate-limit key) for throttling. Every change is one atomic statement, so
// parallel requests on one key (and several nodes) are counted one by one.
type Attempts interface {
	// ReserveAttempt counts one attempt on key at now, before it is checked,
	// and returns the counter including it. A counter whose last attempt is
	// at or before forgetBefore starts again from one (a zero forgetBefore
	// never forgets).
	ReserveAttempt(ctx context.Context, key string, now, forgetBefore time.Time) (Attempt, error)
	// RefundAttempt gives back a reservation that was not a failure: the count
	// goes down by one and, unless another attempt came since, the time of the
	// last attempt goes back to a.Prev.
	RefundAttempt(ctx context.Context, a Attempt) error
	// ResetAttempts clears the counter of key (after a success).
	ResetAttempts(ctx context.Context, key string) error
	// GetAttempts returns the count and the time of the last attempt (zero if none).
	GetAttempts(ctx context.Context, key string) (int, time.Time, error)
	// DeleteQuietAttempts deletes the counters whose last attempt was before
	// the given time, and returns how many.
	DeleteQuietAttempts(ctx context.Context, before time.Time) (int64, error)
	// CountInWindow counts one event on key in fixed windows of the given
	// length (a window starts with its first event) and returns the count in
	// the current window, this event included.
	CountInWindow(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
}

// AuditEvent is one entry of the append-only audit trail.
type AuditEvent struct {
	ID           int64
	At           time.Time
	FiscalNumber string
	// Event is requested, issued, activated, changed, expired, locked, converted, recovered, revoked ...
	Event   string
	Channel string
	// Operator is the operator's ID, empty when the citizen acted. For a
	// back-office action it is the staff member's or API token's identity.
	Operator string
	Detail   string
	// Target names what a back-office action concerned ("client:rp-1",
	// "key:kid", "token:id", "staff:CF"); empty for a citizen's lifecycle event.
	Target string
}

// Audit is the append-only audit trail: there is no update or delete.
type Audit interface {
	AppendAudit(ctx context.Context, e AuditEvent) error
	// ListAudit returns a citizen's events, oldest first.
	ListAudit(ctx context.Context, fiscalNumber string) ([]AuditEvent, error)
}

// Message is a notification in the outbox.
type Message struct {
	ID string
	// Channel is email, pec, sms or post.
	Channel string
	To      string
	Subject string
	// Body may hold the placeholder {{secret}}, filled from Secret at delivery.
	Body string
	// Secret is sealed (a PIN half); it is erased once the message is sent.
	Secret        []byte
	FiscalNumber  string
	Attempts      int
	NextAttemptAt time.Time
	// LeaseUntil keeps a claimed message from other senders until then.
	LeaseUntil time.Time
	LastError  string
	SentAt     time.Time
	CreatedAt  time.Time
}

// Outbox queues notifications. A message is enqueued in the same transaction as
// the event it reports, so a crash loses none.
type Outbox interface {
	Enqueue(ctx context.Context, m Message) error
	// ClaimDue leases up to limit unsent messages of channel due at now, until now+lease.
	ClaimDue(ctx context.Context, channel string, now time.Time, limit int, lease time.Duration) ([]Message, error)
	// MarkSent records delivery and erases the secret.
	MarkSent(ctx context.Context, id string, at time.Time) error
	// MarkFailed records a failed attempt and when to retry.
	MarkFailed(ctx context.Context, id string, next time.Time, reason string) error
	// ListMessages returns the most recent messages, newest first (for the dev sender's page).
	ListMessages(ctx context.Context, limit int) ([]Message, error)
	// ListParked returns up to limit unsent messages that the dispatcher parked
	// (due more than ParkFor/2 after now), oldest first.
	ListParked(ctx context.Context, now time.Time, limit int) ([]Message, error)
	// Requeue makes an unsent message due at at, with its attempts counted
	// afresh, and returns it; ErrNotFound if no unsent message has that ID.
	Requeue(ctx context.Context, id string, at time.Time) (Message, error)
	// CountOutbox counts the unsent messages at now: waiting for delivery
	// (due or to be retried) and parked (as ListParked finds them).
	CountOutbox(ctx context.Context, now time.Time) (OutboxCounts, error)
}

// OutboxCounts are the outbox's unsent messages, for metrics.
type OutboxCounts struct {
	// Backlog are unsent messages waiting for delivery or a retry.
	Backlog int64
	// Parked are unsent messages that wait for an operator (Requeue).
	Parked int64
}

// ParkFor is how far ahead a message that will not be retried is scheduled:
// it stays in the outbox, parked, until an operator requeues it.
const ParkFor = 100 * 365 * 24 * time.Hour

// OneTimeCode is a single-use secret (a recovery link) stored by its hash.
type OneTimeCode struct {
	Hash         string
	Purpose      string
	FiscalNumber string
	ExpiresAt    time.Time
	CreatedAt    time.Time
}

// OneTimeCodes stores single-use codes.
type OneTimeCodes interface {
	CreateCode(ctx context.Context, c OneTimeCode) error
	// ConsumeCode deletes and returns the live code; ErrNotFound if it is unknown,
	// used or expired at now.
	ConsumeCode(ctx context.Context, hash, purpose string, now time.Time) (OneTimeCode, error)
	// DeleteExpiredCodes deletes the codes that expired before the given time.
	DeleteExpiredCodes(ctx context.Context, before time.Time) (int64, error)
}

// ConversionStatus is the state of a request to make a PIN dispositivo.
type ConversionStatus string

// The conversion statuses.
const (
	ConversionPending  ConversionStatus = "pending"
	ConversionApproved ConversionStatus = "approved"
	ConversionRejected ConversionStatus = "rejected"
)

// Conversion is a citizen's request to convert an ordinary PIN to dispositivo,
// with the signed form and the identity document (both sealed).
type Conversion struct {
	ID           string
	FiscalNumber string
	Form         []byte
	FormType     string
	Document     []byte
	DocumentType string
	Status       ConversionStatus
	Reason       string
	ReviewedBy   string
	CreatedAt    time.Time
	ReviewedAt   time.Time
}

// Conversions stores conversion requests.
type Conversions interface {
	CreateConversion(ctx context.Context, c Conversion) error
	GetConversion(ctx context.Context, id string) (Conversion, error)
	// ListConversions returns requests in a status, oldest first, without their documents.
	ListConversions(ctx context.Context, status ConversionStatus) ([]Conversion, error)
	// UpdateConversion applies fn atomically.
	UpdateConversion(ctx context.Context, id string, fn func(Conversion) (Conversion, error)) error
}

// PINRequestStatus is where a request waiting for verification is.
type PINRequestStatus string

// The statuses of a PIN request.
const (
	// PINRequestCallback: waiting for an operator to call the citizen back.
	PINRequestCallback PINRequestStatus = "callback"
	// PINRequestConfirmed: an operator confirmed it; its data are now on record.
	PINRequestConfirmed PINRequestStatus = "confirmed"
	// PINRequestRefused: an operator refused it; nothing changed.
	PINRequestRefused PINRequestStatus = "refused"
	// PINRequestSuperseded: another request of the citizen was confirmed, or
	// the citizen was identified at a branch office, first.
	PINRequestSuperseded PINRequestStatus = "superseded"
)

// PINRequest is a PIN request that would change what is on record for a
// citizen who already has an account (another residence, other contacts or
// names). It waits here, and the account stays as it is, until an operator's
// callback confirms or refuses it.
type PINRequest struct {
	ID           string
	FiscalNumber string
	// Proposed holds the identity, residence and contacts the request gives
	// (no hashes): what goes on record if the request is confirmed.
	Proposed PINAccount
	// FirstHalfVia is where the request asked the first half to go.
	FirstHalfVia string
	Channel      string
	Operator     string
	Status       PINRequestStatus
	// DecidedBy is the operator who confirmed or refused it.
	DecidedBy string
	CreatedAt time.Time
	DecidedAt time.Time
}

// PINRequests stores requests waiting for verification.
type PINRequests interface {
	CreatePINRequest(ctx context.Context, r PINRequest) error
	GetPINRequest(ctx context.Context, id string) (PINRequest, error)
	// ListPINRequests returns up to limit requests in status, oldest first,
	// skipping the first offset (for paging).
	ListPINRequests(ctx context.Context, status PINRequestStatus, offset, limit int) ([]PINRequest, error)
	// DecidePINRequest moves a request that waits for a callback to status,
	// atomically, and returns it; ErrNotFound if no waiting request has that ID
	// (so two operators cannot both decide one request).
	DecidePINRequest(ctx context.Context, id string, status PINRequestStatus, by string, at time.Time) (PINRequest, error)
	// SupersedePINRequests marks every waiting request of the citizen superseded.
	SupersedePINRequests(ctx context.Context, fiscalNumber, by string, at time.Time) (int64, error)
}

// PINStore is everything the PIN adapter persists.
type PINStore interface {
	PINAccounts
	PINRequests
	Attempts
	Audit
	Outbox
	OneTimeCodes
	Conversions
	Transactor
}

// Backend is everything a storage backend persists: the core's Store and the
// aggregates of the login methods.
type Backend interface {
	Store
	PINStore
}
