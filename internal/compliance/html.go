package compliance

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
)

// reportHTML is the stand-alone report `zorgkluis compliance report`
// prints: one self-contained page (no scripts, no outside resources) with
// every control, its status, its evidence and the proofs as JSON to copy
// into `zorgkluis audit check-proof`.
var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"proofs": func(e Evidence) string {
		b, err := json.MarshalIndent(e.Proofs, "", "  ")
		if err != nil {
			return err.Error()
		}
		return string(b)
	},
	"day": func(t any) string {
		switch v := t.(type) {
		case interface{ Format(string) string }:
			return v.Format("2006-01-02")
		default:
			return fmt.Sprint(t)
		}
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Compliance report {{.TenantID}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:.4rem;vertical-align:top;text-align:left}
.green{background:#dff3e0}.red{background:#fbe0e0}.na{background:#eee}
pre{white-space:pre-wrap;font-size:.75rem;max-height:12rem;overflow:auto}
</style></head><body>
<h1>Compliance report</h1>
<p>Organisation <code>{{if .TenantID}}{{.TenantID}}{{else}}(installation only){{end}}</code>, generated {{.Generated.Format "2006-01-02 15:04:05 MST"}}:
{{.Green}} controls green, {{.Red}} red.</p>
<p>Every proof below checks offline with the access log's public key
<code>{{.VerifierKey}}</code> (save one bundle as a file, then <code>zorgkluis audit check-proof FILE --key KEY</code>,
or the independent checker in docs/audit-proofs.md).</p>
<table>
<thead><tr><th>Control</th><th>Status</th><th>Register</th><th>Evidence</th></tr></thead>
<tbody>
{{range .Controls}}<tr class="{{if eq .Status "green"}}green{{else if eq .Status "red"}}red{{else}}na{{end}}" id="{{.ID}}">
<td><strong>{{.Framework}} {{.Ref}}</strong> {{.Title}}<br><small>{{.Text}}</small></td>
<td>{{.Status}}{{range .Reasons}}<br><small>{{.}}</small>{{end}}</td>
<td>{{if not .Applicable}}not applicable: {{.Justification}}<br>{{end}}{{with .Responsible}}responsible: {{.}}<br>{{end}}{{with .AuditMethod}}audit method: {{.}}<br>{{end}}{{with .Notes}}{{.}}<br>{{end}}{{with .Period}}periodic: {{.}}{{end}}{{with .Due}}, due {{day .}}{{end}}{{range .Documents}}<br>document: {{.Name}} ({{.ContentType}}, {{.Size}} bytes, sha256 {{.SHA256}}){{end}}</td>
<td>{{range .Items}}<p><strong>{{.Kind}}</strong>: {{.Status}} — {{.Summary}}</p>{{if .Proofs}}<details><summary>{{len .Proofs}} proof(s)</summary><pre>{{proofs .}}</pre></details>{{end}}{{end}}</td>
</tr>
{{end}}</tbody></table>
</body></html>
`))

// WriteHTML writes r as the stand-alone HTML report.
func (r Report) WriteHTML(w io.Writer) error {
	return reportHTML.Execute(w, r)
}
