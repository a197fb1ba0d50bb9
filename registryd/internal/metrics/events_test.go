package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

type fixedEventStats engine.EventStats

func (f fixedEventStats) EventStats() engine.EventStats { return engine.EventStats(f) }

// The event metrics export the engine's figures as they are, per webhook,
// and nothing when events are off.
func TestEventMetrics(t *testing.T) {
	st := engine.EventStats{Enabled: true, Emitted: 10, Routed: 9, Unrouted: 1, Webhooks: []engine.WebhookStats{{
		Name: "ci", Pending: 2, PendingBytes: 1500, Dead: 1, DeadBytes: 700,
		Delivered: 6, Failed: 4, DeadLettered: 1, Dropped: 0,
		Latency: engine.EventLatency{Bounds: []float64{0.1, 1}, Cumulative: []uint64{5, 6}, Sum: 1.5, Count: 6},
	}}}
	want := `
# HELP berth_events_emitted_total Events queued since start (in the batch of the change each reports).
# TYPE berth_events_emitted_total counter
berth_events_emitted_total 10
# HELP berth_events_pending Deliveries waiting for the webhook: its queue depth.
# TYPE berth_events_pending gauge
berth_events_pending{webhook="ci"} 2
# HELP berth_events_delivered_total Deliveries the webhook accepted (2xx) since start.
# TYPE berth_events_delivered_total counter
berth_events_delivered_total{webhook="ci"} 6
# HELP berth_events_dead_lettered_total Deliveries given up (attempts or age exhausted) since start.
# TYPE berth_events_dead_lettered_total counter
berth_events_dead_lettered_total{webhook="ci"} 1
# HELP berth_events_delivery_latency_seconds Time from an event's emission to the webhook's acceptance.
# TYPE berth_events_delivery_latency_seconds histogram
berth_events_delivery_latency_seconds_bucket{webhook="ci",le="0.1"} 5
berth_events_delivery_latency_seconds_bucket{webhook="ci",le="1"} 6
berth_events_delivery_latency_seconds_bucket{webhook="ci",le="+Inf"} 6
berth_events_delivery_latency_seconds_sum{webhook="ci"} 1.5
berth_events_delivery_latency_seconds_count{webhook="ci"} 6
`
	require.NoError(t, testutil.CollectAndCompare(NewEventCollector(fixedEventStats(st)), strings.NewReader(want),
		"berth_events_emitted_total", "berth_events_pending", "berth_events_delivered_total",
		"berth_events_dead_lettered_total", "berth_events_delivery_latency_seconds"))
	require.Zero(t, testutil.CollectAndCount(NewEventCollector(fixedEventStats(engine.EventStats{}))))
}
