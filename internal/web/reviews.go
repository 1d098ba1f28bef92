package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/governance"
)

// The monthly access-rights review (GOV-2) for the application admins and
// the security officer: open the month's campaign, keep or revoke each
// right (never one's own), close it when every line is decided.

func (s *server) reviewRoutes(mux *http.ServeMux) {
	if s.d.Governance == nil {
		return
	}
	mux.HandleFunc("GET /governance/reviews", s.authed(s.reviewList))
	mux.HandleFunc("POST /governance/reviews", s.authed(s.reviewOpen))
	mux.HandleFunc("GET /governance/reviews/{id}", s.authed(s.reviewPage))
	mux.HandleFunc("POST /governance/reviews/{id}/lines", s.authed(s.reviewDecide))
	mux.HandleFunc("POST /governance/reviews/{id}/close", s.authed(s.reviewClose))
}

func (s *server) reviewer(w http.ResponseWriter, r *http.Request, c *sessionCtx) bool {
	return s.requireRole(w, r, c, access.RoleAppAdmin, access.RoleSecurityOfficer)
}

// reviewFailed answers a governance error with the page it belongs to.
func (s *server) reviewFailed(w http.ResponseWriter, r *http.Request, err error) {
	var bad *governance.InvalidError
	switch {
	case errors.As(err, &bad):
		s.errorPage(w, r, http.StatusBadRequest, "rev.err.invalid")
	case errors.Is(err, governance.ErrOwnLine):
		s.errorPage(w, r, http.StatusForbidden, "rev.err.own")
	case errors.Is(err, governance.ErrForbidden):
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
	case errors.Is(err, governance.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "err.notfound")
	default:
		s.failed(w, r, err)
	}
}

func (s *server) reviewList(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	rs, err := s.d.Governance.Reviews(r.Context(), c.subject)
	if err != nil {
		s.reviewFailed(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "reviews", s.page(w, r, c, "rev.title", rs))
}

func (s *server) reviewOpen(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	rv, err := s.d.Governance.OpenReview(r.Context(), c.subject, r.PostFormValue("period"))
	if err != nil {
		s.reviewFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/reviews/"+rv.ID, http.StatusSeeOther)
}

type reviewData struct {
	Review governance.Review
	Me     string
	Open   int // lines still to decide
}

func (s *server) reviewPage(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	rv, err := s.d.Governance.Review(r.Context(), c.subject, r.PathValue("id"))
	if err != nil {
		s.reviewFailed(w, r, err)
		return
	}
	d := reviewData{Review: rv, Me: c.sess.AccountID}
	for _, l := range rv.Lines {
		if l.Decision == "" {
			d.Open++
		}
	}
	v := s.page(w, r, c, "rev.campaign", d)
	if r.URL.Query().Has("closed") {
		v.Message = "rev.closed.msg"
	}
	s.render(w, r, http.StatusOK, "review", v)
}

func (s *server) reviewDecide(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	line, err := strconv.Atoi(r.PostFormValue("line"))
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "rev.err.invalid")
		return
	}
	id := r.PathValue("id")
	if err := s.d.Governance.DecideLine(r.Context(), c.subject, id, line, r.PostFormValue("decision"), r.PostFormValue("note")); err != nil {
		s.reviewFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/reviews/"+id, http.StatusSeeOther)
}

func (s *server) reviewClose(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	id := r.PathValue("id")
	if _, err := s.d.Governance.CloseReview(r.Context(), c.subject, id); err != nil {
		s.reviewFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/reviews/"+id+"?closed=1", http.StatusSeeOther)
}
