package blobstore

import "context"

// deferSyncKey marks a context of WithDeferredSync.
type deferSyncKey struct{}

// WithDeferredSync returns a context under which a Driver's RawStore and
// PutObject may return before what they stored is durable, leaving the
// fsyncs to the next Sync of the same Driver value: many stores then cost
// one round of syncs (group commit). What was stored is visible and
// readable at once, atomically, as without it.
//
// Until a Sync after it returns nil, a crash or power loss may lose such an
// object, or leave it under its name with only part of its bytes: record
// nothing that points to it before then, and verify what is read (as
// diskaccess does). It never costs an object that was durable before: a
// store that would replace an existing object is made durable at once.
//
// Without it (the default) RawStore and PutObject are durable at return.
// A driver whose stores are durable anyway (S3) ignores it.
func WithDeferredSync(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferSyncKey{}, true)
}

// SyncDeferred reports whether ctx comes from WithDeferredSync: drivers ask
// it in RawStore and PutObject.
func SyncDeferred(ctx context.Context) bool {
	deferred, _ := ctx.Value(deferSyncKey{}).(bool)
	return deferred
}
