// Package api is Switchboard's wire contract: the JSON request and response
// types, problem (error) documents, event types and signaling messages that
// the gateway and mobile-sdk share.
//
// It imports the standard library only, so the SDK stays small and binds
// for Android and iOS; it must never import gateway, Fiber or a domain.
package api
