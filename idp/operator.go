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

// The operator roles. The core's operator authentication puts the roles of
// the caller in the request context (WithOperatorRoles); a method's operator
// API lets each procedure through only for the role that performs it.
const (
	// RoleOperatorSede is a branch-office (sede) operator.
	RoleOperatorSede = "operator-sede"
	// RoleOperatorContactCenter is a contact-center operator.
	RoleOperatorContactCenter = "operator-contact-center"
)

type operatorRolesKey struct{}

// WithOperatorRoles returns ctx carrying the authenticated operator's roles.
func WithOperatorRoles(ctx context.Context, roles ...string) context.Context {
	return context.WithValue(ctx, operatorRolesKey{}, roles)
}

// OperatorHasRole says whether the operator of ctx holds role.
func OperatorHasRole(ctx context.Context, role string) bool {
	roles, _ := ctx.Value(operatorRolesKey{}).([]string)
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}
