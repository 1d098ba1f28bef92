package fhir

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
)

// WriteJSON writes what encoding/json's Encoder writes for a Bundle whose
// resources are compact JSON, byte for byte, without re-compacting them;
// and the same JSON value when a resource has characters the Encoder
// escapes for HTML.
func TestBundleWriteJSON(t *testing.T) {
	self, _ := url.Parse("https://localhost:8443/fhir/Observation?patient=p1&_count=2")
	search := NewSearchset(3, PageLinks(self, 0, 2, 3)...)
	search.AddMatch("https://localhost:8443/fhir/Observation/o1", json.RawMessage(`{"resourceType":"Observation","id":"o1","status":"final"}`))
	search.AddMatch("https://localhost:8443/fhir/Observation/o2", json.RawMessage(`{"resourceType":"Observation","id":"o2","valueString":"a \"quoted\" é"}`))
	total := 1
	history := &Bundle{ResourceType: "Bundle", Type: "history", Total: &total, Entry: []Entry{
		{FullURL: "https://localhost:8443/fhir/Patient/p1", Resource: json.RawMessage(`{"resourceType":"Patient","id":"p1"}`),
			Request: &EntryRequest{Method: "PUT", URL: "Patient/p1"}, Response: &EntryResponse{Status: "200", Etag: `W/"2"`}},
		{Request: &EntryRequest{Method: "DELETE", URL: "Patient/p1"}, Response: &EntryResponse{Status: "204"}}, // a deletion: no resource
		{Resource: json.RawMessage(`{"resourceType":"Patient","id":"p2"}`)},
	}}
	empty := NewSearchset(0, PageLinks(self, 0, 2, 0)...)
	for name, b := range map[string]*Bundle{"searchset": search, "history": history, "empty": empty} {
		var want, got bytes.Buffer
		if err := json.NewEncoder(&want).Encode(b); err != nil {
			t.Fatal(err)
		}
		if err := b.WriteJSON(&got); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", name, got.String(), want.String())
		}
	}

	html := NewSearchset(1)
	html.AddMatch("https://localhost:8443/fhir/Observation/o3", json.RawMessage(`{"resourceType":"Observation","id":"o3","valueString":"<b> & </b>"}`))
	var enc, got bytes.Buffer
	if err := json.NewEncoder(&enc).Encode(html); err != nil {
		t.Fatal(err)
	}
	if err := html.WriteJSON(&got); err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(enc.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got.Bytes(), &b); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got.String())
	}
	if !reflect.DeepEqual(a, b) || !bytes.Contains(got.Bytes(), []byte(`"<b> & </b>"`)) {
		t.Fatalf("got %s, want the value of %s with the resource as it is", got.String(), enc.String())
	}
}
