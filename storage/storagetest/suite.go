package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// test is one conformance case, run against a fresh store.
type test struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// RunTests runs the conformance suite: every method of every storage
// interface, their error paths (storage.ErrNotFound, storage.ErrConflict),
// transaction visibility, the races the contract rules out (double
// redemption, lost updates, duplicate subjects, JTI replay), expiry and
// storage.Sweep. open must return a fresh, empty, migrated store, closed on
// cleanup; it is called once per subtest, from parallel subtests.
func RunTests(t *testing.T, open func(t *testing.T) storage.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Clients", clientTests},
		{"Tokens", tokenTests},
		{"Sessions", sessionTests},
		{"Challenges", challengeTests},
		{"Subjects", subjectTests},
		{"Keys", keyTests},
		{"Replays", assertionTests},
		{"LoginStates", loginStateTests},
		{"Logouts", logoutTests},
		{"LoginHistory", loginTests},
		{"Transactions", txTests},
		{"Janitor", janitorTests},
		{"Store", storeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, open(t))
				})
			}
		})
	}
}

// base is a reference instant with nanoseconds and a non-UTC zone, to check
// that times come back in UTC, truncated to the microsecond.
var base = time.Date(2031, 5, 17, 10, 20, 30, 123456789, time.FixedZone("CEST", 2*3600))

// micro normalizes a time the way the contract promises to keep it.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// normalize returns a copy of v (a record or a slice of records) with times
// truncated to the microsecond in UTC and empty slices nil, so that records
// compare with reflect.DeepEqual.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	out := reflect.New(rv.Type()).Elem()
	out.Set(rv)
	normalizeValue(out)
	return out.Interface()
}

var timeType = reflect.TypeFor[time.Time]()

func normalizeValue(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(micro(v.Interface().(time.Time))))
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			normalizeValue(v.Field(i))
		}
	case v.Kind() == reflect.Slice && v.Len() == 0:
		v.SetZero()
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		for i := range c.Len() {
			normalizeValue(c.Index(i))
		}
		v.Set(c)
	}
}

// same fails the test unless got equals want after normalize.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// race runs fn(i) for i in [0, n) in n goroutines released together, and
// returns the errors by i.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// exactlyOne fails the test unless exactly one error is nil and every other
// one is target.
func exactlyOne(t *testing.T, what string, errs []error, target error) {
	t.Helper()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, target):
			t.Errorf("%s: call %d: unexpected error %v", what, i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%s: %d of %d concurrent calls succeeded, want exactly 1", what, ok, len(errs))
	}
}

// noErrors fails the test on the first non-nil error.
func noErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: call %d: %v", what, i, err)
		}
	}
}

func id(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

var storeTests = []test{
	{"Ping", func(t *testing.T, s storage.Store) {
		must(t, s.Ping(t.Context()))
	}},
	{"Close", func(t *testing.T, s storage.Store) {
		must(t, s.Close())
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := s.Ping(ctx); err == nil {
			t.Fatal("Ping after Close succeeded")
		}
	}},
}
