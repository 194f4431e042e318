// Package sdk is the Go client of Switchboard for the customer and
// location apps: a Client with the base URL, token handling with automatic
// refresh, and typed errors from problem JSON.
//
// It imports the standard library and api/ only, never Fiber or a server
// package, so it binds for Android and iOS; the bindable surface is the
// thin wrapper in package mobile.
package sdk
