package recording

import "github.com/prometheus/client_golang/prometheus"

// Write error reasons, the bounded label set of airlock_recording_write_errors_total.
const (
	reasonOpen     = "open"      // creating the file or writing its header
	reasonDiskFull = "disk_full" // ENOSPC or EDQUOT, at open or later
	reasonWrite    = "write"     // writing a block
	reasonSync     = "sync"      // fsync or close at session end
	reasonIndex    = "index"     // the session index refused an update
	reasonFrame    = "frame"     // a frame the file's format version cannot hold
)

// Metrics are the recording collectors. A nil *Metrics counts nothing.
type Metrics struct {
	Bytes       prometheus.Counter     // compressed bytes written, headers included
	Frames      *prometheus.CounterVec // type
	WriteErrors *prometheus.CounterVec // reason
	Active      prometheus.Gauge

	frames [frameTypeLimit]prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_recording_bytes_total",
			Help: "Bytes written to session recordings (compressed, headers included).",
		}),
		Frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_recording_frames_total",
			Help: "Frames written to session recordings, by frame type.",
		}, []string{"type"}),
		WriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_recording_write_errors_total",
			Help: "Failures to record a session (open, disk_full, write, sync, index, frame); a failed recording ends its session.",
		}, []string{"reason"}),
		Active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_recordings_active",
			Help: "Session recordings currently open.",
		}),
	}
	for t := FrameType(1); t < frameTypeLimit; t++ {
		m.frames[t] = m.Frames.WithLabelValues(t.String())
	}
	for _, r := range []string{reasonOpen, reasonDiskFull, reasonWrite, reasonSync, reasonIndex, reasonFrame} {
		m.WriteErrors.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Bytes, m.Frames, m.WriteErrors, m.Active)
	}
	return m
}

func (m *Metrics) wrote(n int, frames *[frameTypeLimit]int64) {
	if m == nil {
		return
	}
	m.Bytes.Add(float64(n))
	if frames == nil {
		return
	}
	for t, c := range frames {
		if c > 0 && m.frames[t] != nil {
			m.frames[t].Add(float64(c))
		}
	}
}

func (m *Metrics) writeError(reason string) {
	if m == nil {
		return
	}
	m.WriteErrors.WithLabelValues(reason).Inc()
}

func (m *Metrics) active(d float64) {
	if m == nil {
		return
	}
	m.Active.Add(d)
}
