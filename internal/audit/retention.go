package audit

import "time"

// MinTechnicalRetention is the shortest retention a technical log may be
// given.
const MinTechnicalRetention = 30 * 24 * time.Hour
