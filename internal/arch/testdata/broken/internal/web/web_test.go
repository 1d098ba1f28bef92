package web

import (
	"net/http"

	"example.org/zk/internal/access"
	_ "example.org/zk/internal/testkit"
)

// Tests may build what they need.
var ts = access.Subject{}
var tm = http.NewServeMux()

const tq = `DELETE FROM care_relationships`
