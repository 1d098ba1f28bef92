// Package arch holds no code: its test is the statement of the project's
// layout policy (as Go's go/build/deps_test.go is for the standard
// library). It fails when an import points upward or across a layer, when a
// package other than a table's owner writes it (or reads it without a listed
// reason), when access.Subject or access.Grant is assembled outside its
// seam, or when an HTTP listener or root mux is set up outside the router.
// docs/architecture.md states the same rules in prose.
package arch
