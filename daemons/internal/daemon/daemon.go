// Package daemon holds what every VDA daemon's main shares: Main, the
// process's entry with signal handling, and Parse, the kong command line
// with --help and --version; the logging flags and the logger they build
// (tint for a person at a terminal, JSON for machines); the metrics registry
// with the standard Go and process collectors; and Serve, which serves a
// daemon's API and metrics beside its background work.
package daemon

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// LogFlags are the logging flags of every daemon; embed them in its kong CLI.
type LogFlags struct {
	LogFormat string     `help:"Log format: auto (text on a terminal, else JSON), text or json." enum:"auto,text,json" default:"auto" env:"VDA_LOG_FORMAT"`
	LogLevel  slog.Level `help:"Lowest level logged: debug, info, warn or error." default:"info" env:"VDA_LOG_LEVEL"`
}

// Logger builds the logger the flags ask for, writing to w.
func (f LogFlags) Logger(w io.Writer) *slog.Logger {
	text := f.LogFormat == "text"
	if f.LogFormat == "auto" {
		if file, ok := w.(*os.File); ok && isatty.IsTerminal(file.Fd()) {
			text = true
		}
	}
	if text {
		return slog.New(tint.NewHandler(w, &tint.Options{Level: f.LogLevel, TimeFormat: time.TimeOnly}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: f.LogLevel}))
}

// Registry returns a new metrics registry holding the Go runtime and process
// collectors. Each daemon owns one; nothing registers globally.
func Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
