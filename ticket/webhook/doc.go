// Package webhook delivers the ticket stream to outside systems (CRMs,
// ticketing systems) as signed HTTP POSTs: subscriptions, at-least-once
// delivery with exponential backoff and full jitter, a dead-letter list an
// admin can read and replay, and refusal of targets on loopback, private
// and link-local networks (server-side request forgery).
//
// Flow on the state seam. A Dispatcher reads ticket.StreamEvents in the
// consumer group "webhooks" and fans each event out into one job per
// matching subscription on the jobs stream (StreamJobs); the event is
// acknowledged only after its jobs are appended, so a crash between the
// two repeats the fan-out rather than losing it. Every node runs a
// Dispatcher; the consumer group "delivery" on StreamJobs shares the jobs
// among them, and XAutoClaim gives the jobs of a node that died to another.
// A failed job is parked in an ordered index keyed by its due time and
// moved back to StreamJobs when due; after MaxAttempts it becomes a dead
// letter. Deliveries carry the Standard Webhooks headers (webhook-id,
// webhook-timestamp, webhook-signature), so receivers verify them with
// any Standard Webhooks or Svix library, or with Verify.
//
// The "webhooks" group is created at "$" the first time a Dispatcher runs
// against a store: a new deployment does not flood subscribers with the
// whole history. From then on the group's position persists, so events
// appended while every node was down are delivered when one comes back.
//
// It is plain Go on package state: it never imports gateway or Fiber.
package webhook
