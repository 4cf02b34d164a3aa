package fields

import (
	"errors"
	"testing"
)

func TestErrors(t *testing.T) {
	e := Errors{}
	if e.Err() != nil {
		t.Fatal("no problem is no error")
	}
	e.Add("b", "second %d", 2)
	e.Add("a", "first")
	e.Add("a", "ignored")
	err := e.Err()
	var fe *Error
	if !errors.As(err, &fe) || fe.Fields["a"] != "first" || err.Error() != "a: first\nb: second 2" {
		t.Fatalf("%v", err)
	}
	e.Add("c", "later")
	if len(fe.Fields) != 2 {
		t.Fatal("the error shares the map it was made from")
	}
	if One("x", "bad %s", "y").Error() != "x: bad y" {
		t.Fatal(One("x", "bad %s", "y"))
	}
}
