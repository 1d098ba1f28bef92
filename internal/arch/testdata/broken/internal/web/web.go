package web

import (
	"net/http"

	"example.org/zk/internal/access"
)

const rel = `INSERT INTO care_relationships (id) VALUES ($1)`
const teams = `SELECT id FROM access_teams`

var s = access.Subject{AccountID: "x"}
var s2 = access.NewSubject("x")
var mux = http.NewServeMux()
