package audit

import (
	"encoding/json"
	"fmt"
)

func decode(body string) (Event, error) {
	var e Event
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return Event{}, fmt.Errorf("decode audit event: %w", err)
	}
	return e, nil
}
