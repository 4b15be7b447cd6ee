package report

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/agent/enroll"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Identity is the identity the client calls with: after a renewal, the
// renewed one.
// It is safe to call while a delivery renews.
func (c *Client) Identity() *enroll.Identity {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	return c.id
}

// deviceID is the device the client calls as ("" without an identity).
func (c *Client) deviceID() string {
	if id := c.Identity(); id != nil {
		return id.DeviceID
	}
	return ""
}

// renewIfDue renews the device certificate once 2/3 of its lifetime has
// passed (docs/enrolment.md, "Certificate renewal"). A failed renewal is
// logged and tried again at the next delivery: the current certificate
// stays valid until the new one is used, so nothing is lost by waiting.
func (c *Client) renewIfDue(ctx context.Context) {
	if c.id == nil || c.id.Dir == "" || c.id.Cert.Leaf == nil {
		return
	}
	now := c.Now()
	if now.Before(c.id.RenewAt()) || !now.Before(c.id.NotAfter()) {
		return // not due yet, or expired: only a re-bind helps then
	}
	if err := c.Renew(ctx); err != nil {
		c.log.Warn("certificate renewal failed; trying again at the next delivery",
			"not_after", c.id.NotAfter(), "err", err)
	}
}

// Renew renews the device certificate now: a new key, certified by the
// collector over the current mTLS connection, saved in the state
// directory; later calls use it (a new connection), which makes the
// collector revoke the old certificate. The request carries a key
// handover signed by the current key that introduces the new one.
func (c *Client) Renew(ctx context.Context) error {
	r, err := enroll.NewRenewal()
	if err != nil {
		return err
	}
	handover, err := r.Handover(c.id, c.Now())
	if err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	callCtx, cancel := context.WithTimeout(ctx, c.CallTimeout)
	defer cancel()
	resp, _, err := c.agent.renew.Call(callCtx, &wardv1.RenewRequest{CsrDer: r.CSR, Handover: handover}, false)
	if err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	next, err := r.Accept(c.id, resp, c.Now())
	if err != nil {
		return fmt.Errorf("collector %s sent an unusable renewal: %w", c.id.Collector, err)
	}
	if err := enroll.SaveRenewal(c.id.Dir, next); err != nil {
		return err
	}
	conn, agent := dialConn(next)
	old := c.conn
	c.idMu.Lock()
	c.conn, c.agent, c.id = conn, agent, next
	c.idMu.Unlock()
	old.Close()
	c.log.Info("certificate renewed", "not_after", next.NotAfter(), "renew_at", next.RenewAt(), "ca", enroll.Fingerprint(next.CA.Raw))
	return nil
}
