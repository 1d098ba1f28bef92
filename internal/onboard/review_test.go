package onboard_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/principal"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// activate runs an invitation's activation and returns the TOTP secret.
func (e env) activate(t *testing.T, inv onboard.Invitation) string {
	t.Helper()
	ctx := context.Background()
	secret := secretOf(t, inv)
	enr, err := e.svc.StartActivation(ctx, inv.Code, secret, goodPassword, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(enr.Secret, e.clk.Now())
	if _, err := e.svc.CompleteActivation(ctx, inv.Code, secret, code, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	return enr.Secret
}

// A weak password chosen at activation is refused and the refusal is in
// the access log, naming the rules it broke but never the password; no
// code or secret is in any log line.
//
// REQ: AUTH-5, LOG-1, ID-6
func TestWeakPasswordIsLogged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		inv := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		secret := secretOf(t, inv)
		const weak = "annadevries2026"
		if _, err := e.svc.StartActivation(ctx, inv.Code, secret, weak, "192.0.2.7"); !errors.As(err, new(password.Violations)) {
			t.Fatalf("weak password: %v", err)
		}
		e.activate(t, inv)
		evs, err := e.kit.Audit.Query(ctx, audit.Filter{TenantID: tn.ID})
		if err != nil {
			t.Fatal(err)
		}
		refused := 0
		for _, ev := range evs {
			line := ev.Reason + " " + ev.Query + " " + strings.Join(ev.Resources, " ")
			for _, s := range []string{weak, goodPassword, inv.Code, strings.ReplaceAll(inv.Code, "-", ""), secret} {
				if strings.Contains(line, s) {
					t.Errorf("a log line holds %q: %+v", s, ev)
				}
			}
			if ev.Outcome == audit.OutcomeFailed && ev.Query == "activation-start" && strings.HasPrefix(ev.Reason, "password refused by the policy") &&
				ev.UserID == inv.AccountID && ev.SourceAddr == "192.0.2.7" {
				refused++
			}
		}
		if refused != 1 {
			t.Errorf("%d logged refusals of the weak password, want 1", refused)
		}
	})
}

// failingSender fails from its nth message on.
type failingSender struct {
	n, sent int
}

func (f *failingSender) Send(context.Context, authn.Message) error {
	f.sent++
	if f.sent >= f.n {
		return errors.New("mail server unavailable")
	}
	return nil
}

// An import is all or nothing: a line that cannot be written leaves
// nothing of the lines before it (one transaction), and a secret that
// cannot be delivered withdraws every invitation of the batch.
//
// REQ: ID-1, ID-6
func TestInvitationsAllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		pro := func(name, email string) onboard.Invite {
			return onboard.Invite{TenantID: tn.ID, Kind: identity.KindProfessional, Name: name, Email: email, RegistrationMethod: 3,
				VerifiedBy: "A. de Vries", Deliver: onboard.DeliverLetter, Professional: &identity.Professional{FunctionTitle: "huisarts"}}
		}
		count := func() (n int) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE tenant_id = $1`, tn.ID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// The same user name twice: the second line's account fails in the
		// transaction; the first line's account, professional data,
		// invitation and log line are gone with it.
		before, _ := e.kit.Audit.Query(ctx, audit.Filter{TenantID: tn.ID})
		_, err := e.svc.CreateInvitations(ctx, operator(), []onboard.Invite{pro("P. Jansen", "p@eik.example"), pro("Dubbel", "P@eik.example")}, nil)
		var be *onboard.BatchError
		if !errors.As(err, &be) || be.Index != 1 {
			t.Fatalf("duplicate in the batch: %v, want the second invitation's error", err)
		}
		if n := count(); n != 0 {
			t.Errorf("%d accounts after a failed batch", n)
		}
		var invs int
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_invitations`).Scan(&invs)
		after, _ := e.kit.Audit.Query(ctx, audit.Filter{TenantID: tn.ID})
		if invs != 0 || len(after) != len(before) {
			t.Errorf("a failed batch left %d invitations and %d log lines", invs, len(after)-len(before))
		}
		if files, _ := os.ReadDir(e.letter); len(files) != 0 {
			t.Errorf("a failed batch left %d letters", len(files))
		}
		// The second mail fails after the batch committed: every invitation
		// is withdrawn (its code no longer works, its account never can).
		sender := &failingSender{n: 2}
		svc := onboard.New(onboard.Config{DB: db, IDs: e.kit.IDs, Authn: e.kit.Authn, Audit: e.kit.Audit, Clock: e.clk, Sender: sender})
		a, b := pro("P. Jansen", "p@eik.example"), pro("M. Smit", "m@eik.example")
		a.Deliver, b.Deliver = onboard.DeliverEmail, onboard.DeliverEmail
		_, err = svc.CreateInvitations(ctx, operator(), []onboard.Invite{a, b}, nil)
		if !errors.As(err, &be) || be.Index != 1 || !strings.Contains(err.Error(), "mail server unavailable") {
			t.Fatalf("failed delivery: %v", err)
		}
		for _, u := range []string{"p@eik.example", "m@eik.example"} {
			acc, err := e.kit.IDs.AccountByUsername(ctx, u)
			if err != nil || acc.Active || acc.Pending {
				t.Errorf("%s after a failed delivery: %+v %v, want a withdrawn account", u, acc, err)
			}
		}
		var open int
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_invitations WHERE state <> 'revoked'`).Scan(&open)
		if open != 0 {
			t.Errorf("%d invitations still open after a failed delivery", open)
		}
	})
}

// A representative gets an account the same way as a person: the
// invitation carries the patient and the kind of representation, checked
// by access when the admin invites; the activation records it in the same
// transaction that makes the account active. A representation that no
// longer holds at activation (the child turned 16) activates nothing.
//
// REQ: AZ-4, ID-6
func TestRepresentativeInvitation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		svc := onboard.New(onboard.Config{DB: db, IDs: e.kit.IDs, Authn: e.kit.Authn, Audit: e.kit.Audit, Access: e.kit.Access, Clock: e.clk,
			LetterDir: e.letter, BaseURL: "https://zorg.example"})
		e.svc = svc
		tn := e.tenant(t)
		adminInv := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		e.activate(t, adminInv)
		admin, err := principal.ForAccount(ctx, e.kit.IDs, adminInv.AccountID, access.RoleAppAdmin, access.Hoog)
		if err != nil {
			t.Fatal(err)
		}
		asAdmin := audit.Event{TenantID: tn.ID, UserID: admin.AccountID(), UserName: admin.Name(), Role: string(admin.Role()), SourceApp: "test"}
		child, err := e.kit.IDs.CreatePatient(ctx, db, "p-kind", tn.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		invite := func(email, birth string) (onboard.Invitation, error) {
			rep, err := e.kit.Access.CheckRepresentation(ctx, admin, access.Representation{PatientID: child, Kind: access.RepresentParent, PatientBirthDate: birth})
			if err != nil {
				return onboard.Invitation{}, err
			}
			return svc.CreateInvitation(ctx, asAdmin, onboard.Invite{TenantID: tn.ID, Kind: identity.KindPerson, Name: "Jan Bos", Email: email,
				RegistrationMethod: 3, VerifiedBy: "Anna de Vries, geboorteakte gezien", Deliver: onboard.DeliverLetter, Represents: &rep})
		}
		// Only the admin who checked the representation invites with it.
		rep, err := e.kit.Access.CheckRepresentation(ctx, admin, access.Representation{PatientID: child, Kind: access.RepresentLegal})
		if err != nil {
			t.Fatal(err)
		}
		var ie *onboard.InputError
		if _, err := svc.CreateInvitation(ctx, operator(), onboard.Invite{TenantID: tn.ID, Kind: identity.KindPerson, Name: "X", Email: "x@example.nl",
			RegistrationMethod: 3, Deliver: onboard.DeliverLetter, Represents: &rep}); !errors.As(err, &ie) || ie.Field != "representation" {
			t.Errorf("a representation checked by someone else: %v", err)
		}
		// A parent's representation of a 16-year-old is refused at once.
		if _, err := invite("jan@example.nl", "2010-01-01"); !errors.Is(err, access.ErrInvalid) {
			t.Fatalf("parent of a 16-year-old: %v", err)
		}
		inv, err := invite("jan@example.nl", "2016-05-01")
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := e.kit.Access.MayRepresent(ctx, inv.AccountID, child); ok {
			t.Fatal("the representation holds before activation")
		}
		e.activate(t, inv)
		if ok, err := e.kit.Access.MayRepresent(ctx, inv.AccountID, child); !ok || err != nil {
			t.Fatalf("after activation: may represent %v %v", ok, err)
		}
		if own, _ := e.kit.IDs.PersonPatients(ctx, inv.AccountID); len(own) != 0 {
			t.Errorf("the representative's account was linked as the child's own: %v", own)
		}
		reps, err := e.kit.Access.Representations(ctx, admin)
		if err != nil || len(reps) != 1 || reps[0].RecordedBy != admin.AccountID() || reps[0].End == nil || reps[0].End.Format(time.DateOnly) != "2032-05-01" {
			t.Fatalf("representations %+v %v, want the parent's until the 16th birthday, decided by the inviter", reps, err)
		}

		// The child turns 16 between invitation and activation: nothing is
		// activated, nothing recorded, and the answer says why.
		late, err := invite("piet@example.nl", "2010-03-05")
		if err != nil {
			t.Fatal(err)
		}
		secret := secretOf(t, late)
		enr, err := svc.StartActivation(ctx, late.Code, secret, goodPassword, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(68 * time.Hour) // 2026-03-05 05:00: the 16th birthday, within the invitation's 72 h
		code, _ := totp.GenerateCode(enr.Secret, e.clk.Now())
		if _, err := svc.CompleteActivation(ctx, late.Code, secret, code, "192.0.2.1"); !errors.Is(err, onboard.ErrRepresentation) {
			t.Fatalf("representation ended before activation: %v", err)
		}
		acc, _ := e.kit.IDs.AccountByUsername(ctx, "piet@example.nl")
		if acc.Active || !acc.Pending {
			t.Errorf("account %+v, want still pending", acc)
		}
		if roles, _ := e.kit.IDs.Roles(ctx, acc.ID); len(roles) != 0 {
			t.Errorf("roles %v after a failed activation", roles)
		}
		if reps, _ := e.kit.Access.Representations(ctx, admin); len(reps) != 1 {
			t.Errorf("%d representations, want 1", len(reps))
		}
	})
}

// A throttled source adds no more rows (its attempts stay bounded), and an
// invitation whose pending account was deactivated gets the one answer for
// a code that is not valid, also half-way through the activation.
//
// REQ: ID-5, ID-6
func TestThrottleBoundedAndDeactivatedInvitee(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		for range 30 {
			_, _ = e.svc.StartActivation(ctx, "AAAA-BBBB", "C", goodPassword, "192.0.2.50")
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_attempts WHERE source = '192.0.2.50'`).Scan(&n); err != nil || n != 10 {
			t.Errorf("%d attempt rows after 30 tries (%v), want the throttle's 10", n, err)
		}
		e.clk.Advance(16 * time.Minute)
		if _, err := e.svc.StartActivation(ctx, "AAAA-BBBB", "C", goodPassword, "192.0.2.50"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Errorf("after the window: %v", err)
		}
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_attempts WHERE source = '192.0.2.50'`).Scan(&n)
		if n != 1 {
			t.Errorf("%d attempt rows after the window, want the old ones pruned", n)
		}

		inv := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		secret := secretOf(t, inv)
		enr, err := e.svc.StartActivation(ctx, inv.Code, secret, goodPassword, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.kit.Authn.Deactivate(ctx, inv.AccountID); err != nil {
			t.Fatal(err)
		}
		code, _ := totp.GenerateCode(enr.Secret, e.clk.Now())
		if _, err := e.svc.CompleteActivation(ctx, inv.Code, secret, code, "192.0.2.1"); !errors.Is(err, onboard.ErrInvalidCode) && !errors.Is(err, onboard.ErrTOTP) {
			t.Errorf("completing for a deactivated account: %v, want a 4xx answer", err)
		}
		if _, err := e.svc.StartActivation(ctx, inv.Code, secret, goodPassword, "192.0.2.1"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Errorf("starting again for a deactivated account: %v", err)
		}
		if acc, _ := e.kit.IDs.Account(ctx, inv.AccountID); acc.Active || acc.Pending {
			t.Errorf("account %+v, want deactivated", acc)
		}
	})
}

// A tenant's deactivation that stopped before every account was
// deactivated is finished by running it again; once finished, another run
// is refused as already done. The tenant, its lifecycle row and its log
// line are written together.
//
// REQ: ID-5, LOG-1
func TestTenantDeactivationCanBeFinished(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		inv := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		e.activate(t, inv)
		if err := e.svc.DeactivateTenant(ctx, operator(), tn.ID); err != nil {
			t.Fatal(err)
		}
		// As if the first run had stopped before this account.
		if _, err := db.ExecContext(ctx, `UPDATE accounts SET status = 'active' WHERE id = $1`, inv.AccountID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeactivateTenant(ctx, operator(), tn.ID); err != nil {
			t.Fatalf("finishing the deactivation: %v", err)
		}
		if acc, _ := e.kit.IDs.Account(ctx, inv.AccountID); acc.Active {
			t.Error("the account is still active after the second run")
		}
		var ie *onboard.InputError
		if err := e.svc.DeactivateTenant(ctx, operator(), tn.ID); !errors.As(err, &ie) || ie.Field != "tenant" {
			t.Errorf("a third run: %v, want it refused as done", err)
		}
		evs, _ := e.kit.Audit.Query(ctx, audit.Filter{TenantID: tn.ID})
		created, deactivated := 0, 0
		for _, ev := range evs {
			switch ev.Reason {
			case "tenant created (URA 90000123)":
				created++
			case "tenant deactivated":
				deactivated++
			}
		}
		if created != 1 || deactivated != 2 {
			t.Errorf("log: %d creations, %d deactivations; want 1 and 2", created, deactivated)
		}
	})
}

// A role comes with an invitation only for a tenant's first holders of it:
// the operator may invite several first admins before any is active, but
// once the tenant has an active application admin (or security officer),
// a further one is refused with nothing created; it is a right request
// with a second person's approval and an end. Without an active holder
// (the only one left) the operator may invite one again.
//
// REQ: AZ-7, AZ-8, AZ-6, AUTH-8
func TestRoleWithInvitationOnlyForFirstHolders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		admin := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		second := e.inviteAdmin(t, tn.ID, "bert@eik.example") // nobody active yet: allowed
		e.activate(t, admin)
		privileged := func(email string, role access.Role) (onboard.Invitation, error) {
			return e.svc.CreateInvitation(ctx, operator(), onboard.Invite{TenantID: tn.ID, Kind: identity.KindAdmin, Name: "Operator's own",
				Email: email, RegistrationMethod: 3, VerifiedBy: "operator", Deliver: onboard.DeliverLetter, Role: string(role)})
		}
		var ie *onboard.InputError
		if _, err := privileged("mallory@hosting.example", access.RoleAppAdmin); !errors.As(err, &ie) || ie.Field != "role" {
			t.Fatalf("an application admin with the role while one is active: %v, want refused on role", err)
		}
		if _, err := e.kit.IDs.AccountByUsername(ctx, "mallory@hosting.example"); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("the refused invitation left an account: %v", err)
		}
		// The invitation made while nobody was active still works.
		e.activate(t, second)
		// The security officer is a role of its own: its first holder is
		// invited with it, a second one no longer.
		officer, err := privileged("sam@eik.example", access.RoleSecurityOfficer)
		if err != nil {
			t.Fatalf("the first security officer: %v", err)
		}
		e.activate(t, officer)
		if _, err := privileged("mallory@hosting.example", access.RoleSecurityOfficer); !errors.As(err, &ie) || ie.Field != "role" {
			t.Errorf("a second security officer with the role: %v, want refused on role", err)
		}
		// Without a role the operator's invitation of an admin account is
		// still possible: its role then needs the tenant's approval.
		if _, err := e.svc.CreateInvitation(ctx, operator(), onboard.Invite{TenantID: tn.ID, Kind: identity.KindAdmin, Name: "Carla",
			Email: "carla@eik.example", RegistrationMethod: 3, VerifiedBy: "operator", Deliver: onboard.DeliverLetter}); err != nil {
			t.Errorf("an admin account without a role: %v", err)
		}
		// When no active holder is left, the operator invites one again.
		for _, inv := range []onboard.Invitation{admin, second} {
			if err := e.kit.Authn.Deactivate(ctx, inv.AccountID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := privileged("dirk@eik.example", access.RoleAppAdmin); err != nil {
			t.Errorf("a new first admin after the last one left: %v", err)
		}
	})
}

// Text that PostgreSQL cannot store (NUL) or that is not UTF-8 is a field
// error, not a failed insert answered as unavailable; nothing is created.
//
// REQ: ID-2
func TestInvitationTextIsCheckedBeforeTheDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		var ie *onboard.InputError
		if _, err := e.svc.CreateTenant(ctx, operator(), "De\x00Eik", "90000123", ""); !errors.As(err, &ie) || ie.Field != "name" {
			t.Errorf("tenant name with NUL: %v, want a field error on name", err)
		}
		tn := e.tenant(t)
		base := onboard.Invite{TenantID: tn.ID, Kind: identity.KindProfessional, Name: "Dr. P. Jansen", Email: "p@eik.example",
			RegistrationMethod: 3, VerifiedBy: "Anna de Vries", Deliver: onboard.DeliverLetter,
			Professional: &identity.Professional{FunctionTitle: "huisarts"}}
		for field, mut := range map[string]func(*onboard.Invite){
			"name":        func(i *onboard.Invite) { i.Name = "Jan\x00sen" },
			"email":       func(i *onboard.Invite) { i.Email = "p\x00@eik.example" },
			"username":    func(i *onboard.Invite) { i.Username = "p\xff" },
			"verified_by": func(i *onboard.Invite) { i.VerifiedBy = "Anna\x00" },
			"function":    func(i *onboard.Invite) { i.Professional = &identity.Professional{FunctionTitle: "huis\x00arts"} },
		} {
			in := base
			mut(&in)
			if _, err := e.svc.CreateInvitation(ctx, operator(), in); !errors.As(err, &ie) || ie.Field != field {
				t.Errorf("%s: %v, want a field error on %s", field, err, field)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE tenant_id = $1`, tn.ID).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d accounts (%v) after refused invitations", n, err)
		}
	})
}
