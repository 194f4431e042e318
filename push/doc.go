// Package push delivers notifications to people's devices: the device
// registry (FCM registration tokens for Android and iOS, Web Push
// subscriptions for agents' browsers), quiet hours, a durable outbox with
// at-least-once delivery, and the rules that turn ticket events into
// notifications.
//
// Flow on the state seam. Rules read ticket.StreamEvents in the consumer
// group "push-rules" and turn events into notifications; a notification is
// appended to the outbox stream (StreamOutbox) before anything is sent, so
// once Enqueue returns it survives a crash or restart. Every node's Outbox
// reads StreamOutbox in the consumer group "push" (XAutoClaim hands a dead
// node's entries to a live one), sends through the Firebase Admin SDK
// (FCM HTTP v1, SendEach in batches) or Web Push (VAPID, RFC 8030/8291),
// and then acknowledges. Devices that failed for a transient reason are
// parked in an ordered index by due time (exponential backoff with full
// jitter, never before a Retry-After the push service asked for) and sent
// again, only to the devices still owed; after MaxAttempts the rest goes to
// the dead-letter list admins read. A device whose token the push service
// calls unregistered or invalid is removed at once and listed as pruned.
// Every outcome is also appended to the ticket as a push_sent event, so
// failures are visible where people look, not silently dropped.
//
// It is plain Go on packages state, ticket and api: it never imports
// gateway or Fiber, and it never logs a token or a subscription.
package push
