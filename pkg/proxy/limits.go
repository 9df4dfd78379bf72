package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
)

// limitsCache keeps the list of limits for LimitsTTL (opt-in), so a request
// does not pay a store read to learn which limits exist. Amounts are re-read
// by the store inside every reservation, so a lowered limit is never stale;
// a new limit binds only once the list is read again.
type limitsCache struct {
	mu      sync.Mutex
	limits  []budget.Limit
	expires time.Time
}

func (h *Handler) listLimits(ctx context.Context) ([]budget.Limit, error) {
	if h.cfg.LimitsTTL <= 0 {
		return h.cfg.Store.ListLimits(ctx)
	}
	c := &h.limits
	now := time.Now()
	c.mu.Lock()
	if now.Before(c.expires) {
		ls := c.limits
		c.mu.Unlock()
		return ls, nil
	}
	c.mu.Unlock()
	ls, err := h.cfg.Store.ListLimits(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.limits, c.expires = ls, now.Add(h.cfg.LimitsTTL)
	c.mu.Unlock()
	return ls, nil
}
