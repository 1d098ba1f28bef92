package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/synth"
)

// api talks to one zorgkluis server.
type api struct {
	base   string
	client *http.Client
}

// response is what an operation needs of an HTTP answer.
type response struct {
	status int
	body   []byte
	header http.Header
}

func (a *api) do(ctx context.Context, method, path, token string, body any) (response, error) {
	return a.doHeader(ctx, method, path, token, nil, body)
}

func (a *api) doHeader(ctx context.Context, method, path, token string, hdr map[string]string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("User-Agent", "zkload")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: b, header: resp.Header}, nil
}

var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// account is one log-in of the data set with the last TOTP time step it
// used: the server accepts each step once, within one step of skew.
type account struct {
	synth.Account
	mu       sync.Mutex
	lastStep int64
	busy     bool
}

// claimStep reserves the next usable TOTP step of a, or reports false when
// both the current and the next step were used already.
func (a *account) claimStep(now time.Time) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := now.Unix() / 30
	step := max(a.lastStep+1, cur)
	if a.busy || step > cur+1 {
		return 0, false
	}
	a.lastStep, a.busy = step, true
	return step, true
}

func (a *account) release() {
	a.mu.Lock()
	a.busy = false
	a.mu.Unlock()
}

var errNoStep = errors.New("no account has an unused TOTP step")

// logon performs the two-step log-on of acc and returns the session token.
func (a *api) logon(ctx context.Context, acc *account, now func() time.Time) (string, response, error) {
	step, ok := acc.claimStep(now())
	if !ok {
		return "", response{}, errNoStep
	}
	defer acc.release()
	r, err := a.do(ctx, http.MethodPost, "/api/v1/logon", "", map[string]string{"username": acc.Username, "password": acc.Password})
	if err != nil || r.status != http.StatusOK {
		return "", r, err
	}
	var begin struct{ Attempt string }
	if err := json.Unmarshal(r.body, &begin); err != nil || begin.Attempt == "" {
		return "", r, fmt.Errorf("log-on step 1: no attempt in answer")
	}
	code, err := totp.GenerateCodeCustom(acc.TOTPSecret, time.Unix(step*30, 0), totpOpts)
	if err != nil {
		return "", r, err
	}
	r, err = a.do(ctx, http.MethodPost, "/api/v1/logon/totp", "", map[string]string{"attempt": begin.Attempt, "code": code})
	if err != nil || r.status != http.StatusOK {
		return "", r, err
	}
	var sess struct{ Token string }
	if err := json.Unmarshal(r.body, &sess); err != nil || sess.Token == "" {
		return "", r, fmt.Errorf("log-on step 2: no token in answer")
	}
	return sess.Token, r, nil
}

// session is a logged-on account shared by the clients.
type session struct {
	acc   *account
	token string
}

// createdRes is an Observation a client created, kept for its updates.
type createdRes struct {
	id, etag string
	sess     *session
	body     map[string]any
}
