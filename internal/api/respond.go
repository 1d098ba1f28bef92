package api

import (
	"encoding/json"
	"net/http"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, r *http.Request, code int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type":     "about:blank",
		"title":    title,
		"status":   code,
		"detail":   detail,
		"instance": requestID(r.Context()),
	})
}

// decodeJSON reads a JSON body into v; the body is already size-limited.
// It answers the client itself and returns false on any problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if isMaxBytes(err) {
			problem(w, r, http.StatusRequestEntityTooLarge, "Request body too large", "the body exceeds the size limit")
			return false
		}
		problem(w, r, http.StatusBadRequest, "Invalid JSON", "the body must be a JSON object with the documented fields")
		return false
	}
	return true
}
