package main

import (
	"fmt"
	"html/template"
	"os"
	"strings"
)

// writeHTML writes a self-contained page with two SVG charts: commands per
// second and p50/p99 latency over the run.
func writeHTML(path string, res Result) error {
	var thr, p50, p99 []float64
	for _, s := range res.Timeline {
		thr = append(thr, float64(s.Commands))
		p50 = append(p50, s.P50)
		p99 = append(p99, s.P99)
	}
	page := struct {
		Throughput, Latency template.HTML
		Table               []CommandReport
		Violations          int
	}{
		Throughput: svgChart("commands per second", "cmd/s", [][]float64{thr}, []string{"#1f77b4"}),
		Latency:    svgChart("latency (ms): p50 blue, p99 red", "ms", [][]float64{p50, p99}, []string{"#1f77b4", "#d62728"}),
		Table:      res.Commands,
		Violations: len(res.Violations),
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	if err := pageTemplate.Execute(f, page); err != nil {
		f.Close()
		return fmt.Errorf("write plot: %w", err)
	}
	return f.Close()
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>nfsimap loadtest</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}</style>
</head><body>
<h1>loadtest report</h1>
<p>violations: {{.Violations}}</p>
{{.Throughput}}
{{.Latency}}
<table><tr><th>command</th><th>count</th><th>per s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>
{{range .Table}}<tr><td>{{.Command}}</td><td>{{.Count}}</td><td>{{printf "%.1f" .PerSec}}</td><td>{{printf "%.3f" .P50}}</td><td>{{printf "%.3f" .P90}}</td><td>{{printf "%.3f" .P99}}</td><td>{{printf "%.3f" .Max}}</td></tr>
{{end}}</table>
</body></html>
`))

func svgChart(title, unit string, series [][]float64, colors []string) template.HTML {
	const w, h, pad = 800.0, 240.0, 40.0
	var maxV float64
	n := 0
	for _, s := range series {
		if len(s) > n {
			n = len(s)
		}
		for _, v := range s {
			if v > maxV {
				maxV = v
			}
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f"><text x="%.0f" y="16">%s</text>`,
		w, h, pad, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, pad, h-pad, w-10, h-pad)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="24" x2="%.0f" y2="%.0f" stroke="#888"/>`, pad, pad, h-pad)
	fmt.Fprintf(&b, `<text x="2" y="32" font-size="10">%.3g %s</text><text x="%.0f" y="%.0f" font-size="10">%ds</text>`,
		maxV, template.HTMLEscapeString(unit), w-40, h-pad+14, n)
	for i, s := range series {
		if len(s) == 0 {
			continue
		}
		var pts []string
		for j, v := range s {
			x := pad
			if n > 1 {
				x += float64(j) * (w - pad - 10) / float64(n-1)
			}
			y := h - pad - v/maxV*(h-pad-24)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" points="%s"/>`, colors[i%len(colors)], strings.Join(pts, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}
