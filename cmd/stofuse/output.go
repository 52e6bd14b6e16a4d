package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
)

// output is where a command's results, notes and progress go: results on
// stdout (a text line, or a JSON line with --json), notes, warnings and
// progress on stderr.
type output struct {
	stdout, stderr io.Writer
	json           bool
	terminal       bool // stderr is a terminal: draw a progress bar

	mu       sync.Mutex // guards writes, bar and progress
	bar      string     // the progress bar currently drawn, if any
	progress *progress  // the progress being reported, if any
	interval time.Duration
}

func newOutput(c *cli.Context) *output {
	e := envOf(c)
	o := &output{stdout: e.stdout, stderr: e.stderr, json: c.Bool("json"), terminal: e.terminal, interval: 10 * time.Second}
	if v, err := time.ParseDuration(e.getenv("STOFUSE_PROGRESS_INTERVAL")); err == nil && v > 0 {
		o.interval = v
	}
	if e.onOutput != nil {
		e.onOutput(o)
	}
	return o
}

// result prints one result: value as a JSON line with --json, else the
// formatted text.
func (o *output) result(value any, format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clearBar()
	if o.json {
		body, err := json.Marshal(value)
		if err != nil {
			body, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		fmt.Fprintf(o.stdout, "%s\n", body)
	} else {
		fmt.Fprintf(o.stdout, format+"\n", args...)
	}
	o.redrawBar()
}

// textf prints a line in text mode only (table headers).
func (o *output) textf(format string, args ...any) {
	if o.json {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.stdout, format+"\n", args...)
}

func (o *output) notef(format string, args ...any) {
	o.stderrLine("stofuse: " + fmt.Sprintf(format, args...))
}

func (o *output) warnf(format string, args ...any) {
	o.stderrLine("stofuse: warning: " + fmt.Sprintf(format, args...))
}

func (o *output) stderrLine(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clearBar()
	fmt.Fprintln(o.stderr, line)
	o.redrawBar()
}

// clearBar and redrawBar keep the bar on the last terminal line while
// other lines are printed; callers hold mu.
func (o *output) clearBar() {
	if o.bar != "" {
		fmt.Fprint(o.stderr, "\r\033[K")
	}
}

func (o *output) redrawBar() {
	if o.bar != "" {
		fmt.Fprint(o.stderr, o.bar)
	}
}

func (o *output) currentProgress() *progress {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.progress
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func formatRate(bytes int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "-"
	}
	return fmt.Sprintf("%s/s", formatBytes(int64(float64(bytes)/elapsed.Seconds())))
}

func bar(fraction float64, width int) string {
	fraction = min(max(fraction, 0), 1)
	full := int(fraction * float64(width))
	return "[" + strings.Repeat("=", full) + strings.Repeat(" ", width-full) + "]"
}
