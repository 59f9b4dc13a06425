package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
)

// webhook POSTs each event, signed, to a URL.
type webhook struct {
	url     string
	secret  []byte
	headers map[string]string
	timeout time.Duration
	client  *http.Client
}

func newWebhook(c config.EventSink) *webhook {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	return &webhook{
		url:     c.URL,
		secret:  []byte(c.Secret),
		headers: c.Headers,
		timeout: time.Duration(c.TimeoutSeconds) * time.Second,
		client: &http.Client{
			Transport: tr,
			// A redirect is an answer, not an acknowledgement.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Deliver sends one POST; only a 2xx answer acknowledges.
func (w *webhook) Deliver(ctx context.Context, d Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(d.Body))
	if err != nil {
		return errors.New("webhook: invalid URL")
	}
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Mizuchi-Events/1")
	req.Header.Set("X-Mizuchi-Signature", Sign(w.secret, d.Body))
	req.Header.Set("X-Mizuchi-Event-Id", d.ID)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL may carry credentials: report the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

func (w *webhook) Close() error {
	w.client.CloseIdleConnections()
	return nil
}
