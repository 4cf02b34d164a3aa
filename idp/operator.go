package idp

import "context"

type operatorKey struct{}

// WithOperator returns ctx carrying the ID of the authenticated operator (a
// branch-office or contact-center employee). The core's operator
// authentication sets it; a method's operator API reads it with OperatorFrom.
func WithOperator(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, operatorKey{}, id)
}

// OperatorFrom returns the operator of ctx, or "" when none authenticated.
func OperatorFrom(ctx context.Context) string {
	id, _ := ctx.Value(operatorKey{}).(string)
	return id
}
