package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds each call to Redis: beyond it the event is decided
// locally.
const DefaultTimeout = 100 * time.Millisecond

// retryEvery is how often a limiter whose Redis is down asks it again.
const retryEvery = time.Second

// count adds one event to a key and returns its count and the milliseconds
// left in its window, which starts at the first event.
var count = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {n, tonumber(ARGV[1])}
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`)

// undo takes one event back from a key's live window; a key that has
// expired stays absent (a bare DECR would create it, without an expiry).
var undo = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  redis.call('DECR', KEYS[1])
end
return n
`)

// RedisOptions configure a Redis limiter.
type RedisOptions struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// (TLS).
	URL string
	// Timeout bounds each call (DefaultTimeout if 0).
	Timeout time.Duration
	// Prefix starts every key (default "ponte:rl:").
	Prefix string
	// Now is the clock of the local fallback (time.Now if nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Redis counts in one Redis server shared by every node, and in a Local
// limiter that decides while Redis fails.
type Redis struct {
	client  *redis.Client
	local   *Local
	timeout time.Duration
	prefix  string
	log     *slog.Logger

	down      atomic.Bool
	nextProbe atomic.Int64 // unix nanoseconds; while down, one caller asks Redis then
	logMu     sync.Mutex   // orders the "down" and "back" log lines
}

// quiet keeps go-redis's own logger, which writes every failed dial to
// stderr, from logging per request: the limiter logs an outage once.
var quiet sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// NewRedis returns a limiter on the Redis server at o.URL. It does not
// connect: the first event does, and decides locally if Redis is not there.
func NewRedis(o RedisOptions) (*Redis, error) {
	quiet.Do(func() { redis.SetLogger(discardLogger{}) })
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis URL: %w", err)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Prefix == "" {
		o.Prefix = "ponte:rl:"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// No retries and short deadlines: a slow Redis costs a request at most
	// one timeout, and the fallback decides.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	return &Redis{
		client:  redis.NewClient(opt),
		local:   NewLocal(o.Now, 0),
		timeout: o.Timeout,
		prefix:  o.Prefix,
		log:     o.Logger,
	}, nil
}

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// Shared reports whether Redis decided the last events (false while it is down).
func (r *Redis) Shared() bool { return !r.down.Load() }

// Allow counts one event on key, in Redis and locally; Redis decides while it
// answers in time, the local count otherwise. See Limiter.
func (r *Redis) Allow(ctx context.Context, key string, limit int, length time.Duration) Decision {
	local := r.local.Allow(ctx, key, limit, length)
	if r.down.Load() {
		next := r.nextProbe.Load()
		if time.Now().UnixNano() < next || !r.nextProbe.CompareAndSwap(next, time.Now().Add(retryEvery).UnixNano()) {
			return local
		}
	}
	d, err := r.allowRedis(ctx, key, limit, length)
	if err != nil {
		if ctx.Err() != nil {
			return local // the caller gave up: says nothing of Redis
		}
		r.markDown(err)
		return local
	}
	r.markUp()
	return d
}

// Undo takes back one event of key, locally (where Allow always counts it)
// and in Redis while it answers. See Limiter.
func (r *Redis) Undo(ctx context.Context, key string) {
	r.local.Undo(ctx, key)
	if r.down.Load() {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := undo.Run(tctx, r.client, []string{r.prefix + key}).Err(); err != nil && ctx.Err() == nil {
		r.markDown(err) // the caller did not give up: Redis failed
	}
}

func (r *Redis) allowRedis(ctx context.Context, key string, limit int, length time.Duration) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ms := max(length.Milliseconds(), 1)
	res, err := count.Run(ctx, r.client, []string{r.prefix + key}, ms).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(res) != 2 {
		return Decision{}, errors.New("ratelimit: unexpected answer from Redis")
	}
	return decide(int(res[0]), limit, time.Duration(res[1])*time.Millisecond), nil
}

func (r *Redis) markDown(err error) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.down.Swap(true) {
		return
	}
	r.nextProbe.Store(time.Now().Add(retryEvery).UnixNano())
	r.log.Warn("rate limits: Redis unavailable, limiting on this node only until it answers", "err", err.Error())
}

func (r *Redis) markUp() {
	if !r.down.Load() {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.down.Swap(false) {
		r.log.Info("rate limits: Redis answers again, limits shared by every node")
	}
}
