// Package events holds the shapes of the events Berth emits and the parts
// of their delivery that need no store: the EventBridge envelope and the
// details of Amazon ECR's events (as AWS documents them in "Amazon ECR
// events and EventBridge"), the stored forms of a queued event and of a
// delivery, the webhook signature (Standard Webhooks: HMAC-SHA256 over id,
// timestamp and body), the retry schedule (exponential backoff with
// jitter), an endpoint's filter, and the HTTP post of one delivery.
//
// # Nouns
//
//   - Event: one EventBridge event ("version", "id", "detail-type",
//     "source" aws.ecr, "account", "time", "region", "resources",
//     "detail"), with a typed detail per detail type (ImageAction,
//     PullThroughCacheAction, ImageScan, ReplicationAction).
//   - Queued: an event as the engine stores it in its queue, in the same
//     index batch as the change it reports, with the exact time it was
//     emitted and, for a change the engine made by itself, its cause.
//   - Delivery: a queued event routed to one webhook endpoint, with its
//     attempts so far; a dead letter is a Delivery given up.
//   - Filter: which events an endpoint wants (detail types, repository
//     prefixes).
//   - Backoff: when the next attempt of a failed delivery is due.
//   - Signer: the signature headers of a delivery; Verify checks them as a
//     receiver does.
//
// The engine owns the queue (index keys e, w and W, docs/keys.md), the
// router that records each event in the audit log and hands it to the
// endpoints, and the senders; docs/events.md describes the whole.
package events
