package outbox

// SkipTo raises the sequence the next Append uses to at least next,
// durably. The report client calls it when the collector already holds
// other reports under the sequences this outbox is about to use (a state
// directory restored from a backup), so that new reports number after
// them; see docs/outbox.md, "Report identity".
func (o *Outbox) SkipTo(next uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if next <= o.meta.NextSequence {
		return nil
	}
	m := o.meta
	m.NextSequence = next
	if err := o.writeMeta(m); err != nil {
		return err
	}
	o.meta = m
	return nil
}
