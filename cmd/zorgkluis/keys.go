package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/backup"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const keysUsage = `Usage: zorgkluis keys ACTION [ARGS] [flags]

Actions:
  show                          the master key in use (fingerprint) and each tenant's key version
  rotate-master                 propose a new master key (four eyes, GOV-1): another operator approves it
  rotate-tenant TENANT          propose a new key for a tenant (four eyes): another operator approves it
  requests [TENANT]             the pending key rotations (the master key's, or the tenant's)
  approve ID                    as another operator: carry out a proposed rotation, online (a new master key is
                                added to DATA/master.key and every tenant key re-wrapped under it; a new tenant
                                key re-wraps its patient keys)
  reject ID                     as another operator: close a proposed rotation without effect
  shred TENANT PATIENT          destroy a patient's data key: their data becomes unreadable forever (logged)
  export-public                 print the public identifiers of the keys in use (fingerprints)

No data is re-encrypted by a rotation. Flags are those of "zorgkluis migrate" (--data, --database).`

// runKeys is the keys subcommand: the positional arguments come first, the
// configuration flags after them.
func runKeys(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stdout, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	need := map[string]int{"show": 0, "rotate-master": 0, "rotate-tenant": 1, "requests": 0, "approve": 1, "reject": 1, "shred": 2, "export-public": 0}
	action := args[0]
	n, ok := need[action]
	if !ok {
		fmt.Fprintf(e.stderr, "zorgkluis keys: unknown action %q\n\n%s\n", action, keysUsage)
		return 2
	}
	if action == "requests" && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		n = 1 // the tenant is optional
	}
	if len(args) < 1+n {
		fmt.Fprintf(e.stderr, "zorgkluis keys %s: needs %d argument(s)\n\n%s\n", action, n, keysUsage)
		return 2
	}
	pos := args[1 : 1+n]
	cfg, err := config.Load("keys "+action, args[1+n:], e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis keys %s: %v\n", action, err)
		return 2
	}
	if err := keysAction(ctx, e, cfg, action, pos); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis keys %s: %v\n", action, err)
		return 1
	}
	return 0
}

func keysAction(ctx context.Context, e env, cfg config.Config, action string, pos []string) error {
	if action == "approve" || action == "reject" {
		return keysDecide(ctx, e, cfg, pos[0], action == "approve", operatorActor())
	}
	log := newLogger(env{stdout: e.stdout, stderr: discard{}, getenv: e.getenv}, "error")
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	switch action {
	case "show", "export-public":
		fmt.Fprintf(e.stdout, "master key %s (%s)\n", a.keys.MasterID(), filepath.Join(cfg.DataDir, "master.key"))
		if action == "export-public" {
			return nil
		}
		tenants, err := a.ids.Tenants(ctx)
		if err != nil {
			return err
		}
		st := keys.NewSQLStore(a.db)
		for _, t := range tenants {
			keks, err := st.TenantKEKs(ctx, t.ID)
			if err != nil {
				return err
			}
			if len(keks) == 0 {
				fmt.Fprintf(e.stdout, "tenant %s: no keys yet\n", t.ID)
				continue
			}
			cur := keks[0]
			for _, k := range keks {
				if k.Version > cur.Version {
					cur = k
				}
			}
			fmt.Fprintf(e.stdout, "tenant %s: key version %d wrapped by master %s (%d version(s) kept)\n", t.ID, cur.Version, cur.MasterID, len(keks))
		}
	case "rotate-master":
		req, err := proposeRotation(ctx, a, change.Proposal{Kind: changeRotateMaster,
			Summary: "rotate the master key (a new master key; every tenant key re-wrapped, the CA keys re-sealed)", Payload: struct{}{}})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "request %s: rotation of the master key, pending until %s; another operator approves it: zorgkluis keys approve %s (four eyes)\n",
			req.ID, req.ExpiresAt.UTC().Format(time.RFC3339), req.ID)
	case "rotate-tenant":
		if _, err := a.ids.Tenant(ctx, pos[0]); err != nil {
			return fmt.Errorf("tenant %s: %w", pos[0], err)
		}
		req, err := proposeRotation(ctx, a, change.Proposal{Kind: changeRotateTenant, TenantID: pos[0],
			Summary: "rotate the organisation's key (a new tenant key; every patient key re-wrapped)", Payload: rotateChange{TenantID: pos[0]}})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "request %s: rotation of tenant %s's key, pending until %s; another operator approves it: zorgkluis keys approve %s (four eyes)\n",
			req.ID, pos[0], req.ExpiresAt.UTC().Format(time.RFC3339), req.ID)
	case "requests":
		tenant, kind := "", changeRotateMaster
		if len(pos) > 0 {
			tenant, kind = pos[0], changeRotateTenant
		}
		pending, _, err := a.changes.List(ctx, tenant, 100)
		if err != nil {
			return err
		}
		for _, r := range pending {
			if r.Kind == kind {
				fmt.Fprintf(e.stdout, "%s\tproposed by %s\t%s\texpires %s\n", r.ID, r.ProposedBy, r.ProposedAt.UTC().Format(time.RFC3339), r.ExpiresAt.UTC().Format(time.RFC3339))
			}
		}
	case "shred":
		if err := shredPatient(ctx, a, pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "patient %s of tenant %s: data key destroyed; their data can no longer be read\n", pos[1], pos[0])
	}
	return nil
}

// shredPatient destroys a patient's data key (crypto-shredding, DP-1). It
// writes the access-log event first, durably, so that no shred happens
// without its log line; a failed shred is logged again as failed. The
// actor is the operating-system user running the command: access has no
// rule for erasure, so the event is a platform-administration event
// attributed to that user.
func shredPatient(ctx context.Context, a *app, tenantID, patientID string) error {
	ev := operatorEvent("zorgkluis keys shred")
	ev.Action, ev.Outcome, ev.TenantID, ev.PatientID = audit.ActionDelete, audit.OutcomeSuccess, tenantID, patientID
	ev.Basis, ev.Reason = "crypto-shredding", "erasure: the patient's data key is destroyed (zorgkluis keys shred)"
	ev.Resources = []string{"Patient/" + patientID}
	// Only a patient this tenant holds can be erased: the key store would
	// accept any id (a tombstone), and a typo must not look like success.
	if _, err := a.records.ResourcePatient(ctx, tenantID, "Patient", patientID); err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeFailed, "erasure refused: no such patient in this tenant"
		if _, lerr := a.audit.Append(ctx, ev); lerr != nil {
			return fmt.Errorf("patient %s in tenant %s: %w (and logging the refusal: %v)", patientID, tenantID, err, lerr)
		}
		return fmt.Errorf("patient %s in tenant %s: %w; nothing was shredded", patientID, tenantID, err)
	}
	if _, err := a.audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("log the shred first: %w; nothing was shredded", err)
	}
	if err := a.keys.Shred(ctx, tenantID, patientID); err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeFailed, "erasure failed: "+err.Error()
		if _, lerr := a.audit.Append(ctx, ev); lerr != nil {
			return fmt.Errorf("%w (and logging the failure: %v)", err, lerr)
		}
		if errors.Is(err, keys.ErrNotFound) {
			return fmt.Errorf("patient %s has no data key in tenant %s", patientID, tenantID)
		}
		return err
	}
	// A restore of an older backup must shred them again (DP-1, DP-5).
	if err := backup.RecordShred(ctx, backup.Dir(a.cfg.BackupDir), backup.Person{TenantID: tenantID, PatientID: patientID}, a.clock.Now()); err != nil {
		return fmt.Errorf("the data key is destroyed, but %w: run the shred again once the backup directory (%s) is writable, or a restore could bring the record back", err, a.cfg.BackupDir)
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// operatorActor is the operating-system user running a command, as a
// four-eyes actor of the platform (no tenant).
func operatorActor() change.Actor {
	ev := operatorEvent("")
	return change.Actor{AccountID: ev.UserID, Name: ev.UserName, Role: ev.Role}
}

func proposeRotation(ctx context.Context, a *app, p change.Proposal) (change.Request, error) {
	var req change.Request
	err := a.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		req, err = a.changes.Propose(ctx, tx, operatorActor(), p)
		return err
	})
	return req, err
}

// keysDecide approves or rejects a proposed key rotation as by. A master
// key's rotation adds the new key to the key file only once the decision
// is allowed, and then decides in an app that loaded it.
func keysDecide(ctx context.Context, e env, cfg config.Config, id string, approve bool, by change.Actor) error {
	log := newLogger(env{stdout: e.stdout, stderr: discard{}, getenv: e.getenv}, "error")
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	r, err := a.changes.Lookup(ctx, by, id)
	if err == nil && r.Kind != changeRotateMaster && r.Kind != changeRotateTenant {
		err = fmt.Errorf("request %s is no key rotation: %w", id, change.ErrNotFound)
	}
	if err != nil {
		a.Close()
		return err
	}
	if r.Kind == changeRotateMaster && approve && a.changes.MayDecide(r, by) {
		a.Close()
		// The new key must be in the file before the keyring loads it.
		path := filepath.Join(cfg.DataDir, "master.key")
		kid, err := keys.AddMasterKey(path, rand.Reader)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "new current master key %s added to %s\n", kid, path)
		if a, err = openApp(ctx, cfg, log); err != nil {
			return err
		}
	}
	defer a.Close()
	r, err = a.changes.DecideKind(ctx, by, r.Kind, id, approve, "")
	switch {
	case err != nil:
		return err
	case !approve:
		fmt.Fprintf(e.stdout, "request %s rejected\n", r.ID)
	case r.Kind == changeRotateMaster:
		fmt.Fprintf(e.stdout, "request %s approved: re-sealed %d CA key(s) under the new master key\n", r.ID, a.rewrapped[1])
		fmt.Fprintf(e.stdout, "re-wrapped %d tenant key(s) under master %s; restart every replica so it loads the new master key; "+
			"older master keys stay in the file and can be removed after that\n", a.rewrapped[0], a.keys.MasterID())
	default:
		keks, err := keys.NewSQLStore(a.db).TenantKEKs(ctx, r.TenantID)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "request %s approved: tenant %s has a new key (%d version(s) kept); its patient keys are re-wrapped\n", r.ID, r.TenantID, len(keks))
	}
	return nil
}
