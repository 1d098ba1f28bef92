package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// Bundle is a FHIR R4 Bundle as the server writes it: searchset and history
// answers and collection exports. It marshals with encoding/json; entries
// carry their resource as raw JSON, embedded unchanged (compacted by
// json.Marshal, copied as they are by WriteJSON, the answers' writer).
type Bundle struct {
	ResourceType string  `json:"resourceType"` // always "Bundle"
	ID           string  `json:"id,omitempty"`
	Type         string  `json:"type"` // searchset, history, collection
	Timestamp    string  `json:"timestamp,omitempty"`
	Total        *int    `json:"total,omitempty"` // searchset and history only
	Link         []Link  `json:"link,omitempty"`
	Entry        []Entry `json:"entry,omitempty"`
}

// Link is a Bundle.link: relation "self", "next", "previous", ...
type Link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// Entry is a Bundle.entry.
type Entry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *EntrySearch    `json:"search,omitempty"`
	Request  *EntryRequest   `json:"request,omitempty"`
	Response *EntryResponse  `json:"response,omitempty"`
}

// EntrySearch is Bundle.entry.search: mode "match", "include" or "outcome".
type EntrySearch struct {
	Mode string `json:"mode"`
}

// EntryRequest is Bundle.entry.request, used in history bundles.
type EntryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// EntryResponse is Bundle.entry.response, used in history bundles.
type EntryResponse struct {
	Status       string `json:"status"`
	Etag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
}

// NewSearchset returns a searchset Bundle with the total number of matches
// (over all pages) and the given links.
func NewSearchset(total int, links ...Link) *Bundle {
	return &Bundle{ResourceType: "Bundle", Type: "searchset", Total: &total, Link: links}
}

// AddMatch appends a resource that matched the search.
func (b *Bundle) AddMatch(fullURL string, resource json.RawMessage) {
	b.Entry = append(b.Entry, Entry{FullURL: fullURL, Resource: resource, Search: &EntrySearch{Mode: "match"}})
}

// AddInclude appends a resource included because a match refers to it.
func (b *Bundle) AddInclude(fullURL string, resource json.RawMessage) {
	b.Entry = append(b.Entry, Entry{FullURL: fullURL, Resource: resource, Search: &EntrySearch{Mode: "include"}})
}

// AddOutcome appends an OperationOutcome with warnings about the search
// (for instance an ignored parameter).
func (b *Bundle) AddOutcome(o *OperationOutcome) error {
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	b.Entry = append(b.Entry, Entry{Resource: raw, Search: &EntrySearch{Mode: "outcome"}})
	return nil
}

// NewHistory returns a history Bundle with the total number of versions and
// the given links.
func NewHistory(total int, links ...Link) *Bundle {
	return &Bundle{ResourceType: "Bundle", Type: "history", Total: &total, Link: links}
}

// Version is one version of a resource, for a history Bundle.
type Version struct {
	FullURL      string          // base + Type/id
	Type, ID     string          // resource type and id
	VersionID    string          // meta.versionId
	Method       string          // "POST" (created), "PUT" (updated) or "DELETE"
	LastModified time.Time       // meta.lastUpdated of the version
	Resource     json.RawMessage // nil for a deletion
}

// AddVersion appends one version, with the request that made it and its
// response, as R4 asks of history entries.
func (b *Bundle) AddVersion(v Version) {
	req := &EntryRequest{Method: v.Method, URL: v.Type + "/" + v.ID}
	status := "200 OK"
	switch v.Method {
	case "POST":
		req.URL, status = v.Type, "201 Created"
	case "DELETE":
		status = "204 No Content"
	}
	resp := &EntryResponse{Status: status, LastModified: v.LastModified.UTC().Format(time.RFC3339Nano)}
	if v.VersionID != "" {
		resp.Etag = `W/"` + v.VersionID + `"`
	}
	b.Entry = append(b.Entry, Entry{FullURL: v.FullURL, Resource: v.Resource, Request: req, Response: resp})
}

// NewCollection returns a collection Bundle for an export (DP-7), stamped
// with the time it was assembled. (A document Bundle would need a
// Composition first; the export does not make one.)
func NewCollection(id string, timestamp time.Time) *Bundle {
	return &Bundle{ResourceType: "Bundle", ID: id, Type: "collection", Timestamp: timestamp.UTC().Format(time.RFC3339Nano)}
}

// AddResource appends a resource to a collection.
func (b *Bundle) AddResource(fullURL string, resource json.RawMessage) {
	b.Entry = append(b.Entry, Entry{FullURL: fullURL, Resource: resource})
}

// PageLinks returns the self, previous and next links of one page of
// results: offset is the index of the first result on the page, count the
// page size, total the number of results. The page links are self with
// _offset and _count set; every other query parameter is kept.
func PageLinks(self *url.URL, offset, count, total int) []Link {
	page := func(off int) string {
		u := *self
		q := u.Query()
		q.Set("_offset", strconv.Itoa(off))
		q.Set("_count", strconv.Itoa(count))
		u.RawQuery = q.Encode()
		return u.String()
	}
	links := []Link{{Relation: "self", URL: page(offset)}}
	if count <= 0 {
		return links
	}
	if offset > 0 {
		links = append(links, Link{Relation: "previous", URL: page(max(offset-count, 0))})
	}
	if offset+count < total {
		links = append(links, Link{Relation: "next", URL: page(offset + count)})
	}
	return links
}

// WriteJSON writes b to w as encoding/json's Encoder would, with one
// difference: each entry's resource is copied as it is instead of being
// validated and compacted again. The resources a server puts in a Bundle
// are stored compact JSON (or made by json.Marshal), and re-compacting
// every resource of a page was most of a search answer's encoding cost.
// The one visible difference: characters an Encoder would escape for HTML
// (<, >, &) inside a resource stay as the resource has them.
func (b *Bundle) WriteJSON(w io.Writer) error {
	head := *b
	head.Entry = nil
	h, err := json.Marshal(head)
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if len(b.Entry) == 0 {
		_, err := w.Write(append(h, '\n'))
		return err
	}
	size := len(h) + 16
	for _, e := range b.Entry {
		size += len(e.Resource) + len(e.FullURL) + 64
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.Write(h[:len(h)-1]) // without its closing brace; Entry is the last field
	buf.WriteString(`,"entry":[`)
	for i, e := range b.Entry {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeEntry(&buf, e); err != nil {
			return err
		}
	}
	buf.WriteString("]}\n")
	_, err = buf.WriteTo(w)
	return err
}

// writeEntry writes one entry with its fields in the struct's order:
// fullUrl, resource (as it is), then the others as encoding/json has them.
func writeEntry(buf *bytes.Buffer, e Entry) error {
	rest := e
	rest.FullURL, rest.Resource = "", nil
	tail, err := json.Marshal(rest) // "{}" or {"search":...,...}
	if err != nil {
		return fmt.Errorf("write bundle entry: %w", err)
	}
	buf.WriteByte('{')
	sep := false
	if e.FullURL != "" {
		u, err := json.Marshal(e.FullURL)
		if err != nil {
			return fmt.Errorf("write bundle entry: %w", err)
		}
		buf.WriteString(`"fullUrl":`)
		buf.Write(u)
		sep = true
	}
	if len(e.Resource) > 0 {
		if sep {
			buf.WriteByte(',')
		}
		buf.WriteString(`"resource":`)
		buf.Write(bytes.TrimSpace(e.Resource))
		sep = true
	}
	if len(tail) > 2 {
		if sep {
			buf.WriteByte(',')
		}
		buf.Write(tail[1 : len(tail)-1])
	}
	buf.WriteByte('}')
	return nil
}
