package s3api

import (
	"container/list"
	"sync"
)

// bindings remembers which subject created which multipart upload, so
// UploadPart, Complete, Abort and ListParts on that upload are accepted
// only for the same subject and key without a policy call per part.
//
// It is bounded (least recently used entries are dropped) and lives in
// memory: after a restart, on another replica, or once an entry was
// dropped, the request is instead authorized by the policy engine with the
// operation's own action (upload_part, complete_multipart, …), so a binding
// that is lost never lets a request through that the policy would deny.
type bindings struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *binding, most recent first
	byID  map[string]*list.Element
}

type binding struct {
	bucket, uploadID string
	subject, key     string
}

func newBindings(max int) *bindings {
	return &bindings{max: max, order: list.New(), byID: map[string]*list.Element{}}
}

func id(bucket, uploadID string) string { return bucket + "\x00" + uploadID }

func (b *bindings) add(bucket, uploadID, subject, key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := id(bucket, uploadID)
	if e, ok := b.byID[k]; ok {
		b.order.Remove(e)
	}
	b.byID[k] = b.order.PushFront(&binding{bucket: bucket, uploadID: uploadID, subject: subject, key: key})
	for b.order.Len() > b.max {
		last := b.order.Back()
		old := last.Value.(*binding)
		delete(b.byID, id(old.bucket, old.uploadID))
		b.order.Remove(last)
	}
}

// lookup returns the binding of an upload, if known.
func (b *bindings) lookup(bucket, uploadID string) (subject, key string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.byID[id(bucket, uploadID)]
	if !ok {
		return "", "", false
	}
	b.order.MoveToFront(e)
	v := e.Value.(*binding)
	return v.subject, v.key, true
}

func (b *bindings) remove(bucket, uploadID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.byID[id(bucket, uploadID)]; ok {
		delete(b.byID, id(bucket, uploadID))
		b.order.Remove(e)
	}
}
