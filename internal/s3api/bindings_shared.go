package s3api

// Bindings is a multipart binding table that outlives a Handler: the
// handlers built by configuration reloads share one, so an upload created
// before a reload stays bound to its creator after it.
type Bindings struct{ b *bindings }

// NewBindings makes a table of at most max entries (100000 when max ≤ 0).
func NewBindings(max int) *Bindings {
	if max <= 0 {
		max = 100000
	}
	return &Bindings{b: newBindings(max)}
}

// bindings is the table of Options.Bindings, or a new one of MaxBindings
// entries.
func (o Options) bindings() *bindings {
	if o.Bindings != nil {
		return o.Bindings.b
	}
	return newBindings(o.MaxBindings)
}
