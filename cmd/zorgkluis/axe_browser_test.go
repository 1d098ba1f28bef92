package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeVersion is the axe-core release the browser tests pin.
const axeVersion = "4.14.1"

var axe struct {
	once   sync.Once
	source string
	err    string
}

// axeSource installs axe-core with npm once per test binary and returns
// axe.min.js, which the browser tests inject through the DevTools protocol:
// the pages never serve it and need no inline script for it.
func axeSource(t *testing.T) string {
	t.Helper()
	axe.once.Do(func() {
		dir, err := os.MkdirTemp("", "zk-axe-")
		if err != nil {
			axe.err = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "axe-core@"+axeVersion)
		install.Dir = dir
		if out, err := install.CombinedOutput(); err != nil {
			axe.err = "npm install axe-core@" + axeVersion + ": " + err.Error() + "\n" + string(out)
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
		if err != nil {
			axe.err = err.Error()
			return
		}
		axe.source = string(b)
	})
	if axe.err != "" {
		t.Fatal(axe.err)
	}
	return axe.source
}

// axeViolation is one rule axe-core found broken, with a few of the
// elements that break it.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAccessibility runs axe-core on the page now shown (WCAG 2.1 A and
// AA rules) and fails the test on any serious or critical violation; every
// page a journey opens or submits to passes through here.
func (b *browser) checkAccessibility() {
	b.t.Helper()
	src := axeSource(b.t)
	loc := b.location()
	if strings.HasPrefix(loc, "data:") || strings.HasPrefix(loc, "about:") {
		return
	}
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(() => {
		if (!window.axe) { `+src+` }
		return axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, resultTypes: ['violations']})
			.then(r => JSON.stringify(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
				.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))));
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe-core on %s: %v", loc, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		b.t.Fatalf("axe-core on %s: %v", loc, err)
	}
	for _, v := range vs {
		b.t.Errorf("accessibility (axe-core %s) on %s: %s %s: %s; at %s", axeVersion, loc, v.Impact, v.ID, v.Help, strings.Join(v.Nodes, " | "))
	}
}
