// Package gateway is Switchboard's HTTP edge on Fiber v2: routes,
// middleware (request IDs, access logs, metrics, recovery, CORS, rate
// limits, authentication, idempotency keys), problem JSON errors, health,
// metrics and the OpenAPI document.
//
// Handlers are thin: they parse, call a domain, render. Domains never
// import this package; it imports them.
package gateway
