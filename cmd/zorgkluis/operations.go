package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/backup"
	"github.com/zorgkluis/zorgkluis/internal/clockwatch"
	"github.com/zorgkluis/zorgkluis/internal/router"
)

// startOperations starts what serve runs beside the requests: the backup
// schedule (DP-5) and the clock watch (DP-6), with their metrics, and
// returns the readiness checks they add.
func startOperations(ctx context.Context, a *app, reg prometheus.Registerer, log *slog.Logger) ([]router.ReadyCheck, error) {
	var ready []router.ReadyCheck
	if servers := a.cfg.NTPServerList(); len(servers) > 0 {
		w := clockwatch.New(servers, a.cfg.ClockMaxOffset, a.clock, clockwatch.NTP, func(ctx context.Context, kind, detail string) {
			if kind == "ntp-unreachable" {
				// Reported, not a security event: a network fault, not a
				// wrong time; the metric and readiness body show it too.
				log.Warn("clock watch: "+detail, "kind", kind)
				return
			}
			if _, err := a.queue.Raise(ctx, a.db, alert.Entry{Kind: kind, AccountID: "system:clockwatch", Detail: detail}); err != nil {
				log.Error("clock watch: raise security event", "kind", kind, "err", err)
			}
		})
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zorgkluis_clock_offset_seconds",
				Help: "Offset of the server's clock from NTP time at the last check (DP-6; alarm beyond ±0.5)."},
				func() float64 { return w.Status().Offset.Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zorgkluis_clock_ntp_unreachable",
				Help: "NTP servers that did not answer at the last check."},
				func() float64 { return float64(len(w.Status().Unreachable)) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zorgkluis_clock_ntp_answered",
				Help: "NTP servers that answered at the last check."},
				func() float64 { return float64(w.Status().Answered) }),
		)
		go w.Run(ctx, time.Minute)
		go logClock(ctx, a, w, log)
		ready = append(ready, router.ReadyCheck{Name: "clock", Check: w.Ready})
		log.Info("clock watch on", "ntp_servers", servers, "max_offset", a.cfg.ClockMaxOffset)
	} else {
		log.Warn("clock watch off (ntp-servers off): the access log's times are not checked against NTP (DP-6)")
	}

	if a.cfg.BackupInterval == 0 {
		log.Warn("backup schedule off (backup-interval 0): run zorgkluis backup from cron instead")
		return ready, nil
	}
	k, created, err := backup.LoadKeys(a.cfg.BackupIdentity, a.cfg.BackupRecipients)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("created the backup key: copy it somewhere safe and offline, apart from the master key", "identity", a.cfg.BackupIdentity)
	}
	host, _ := os.Hostname()
	s := &backup.Schedule{DB: a.db, Store: backup.Dir(a.cfg.BackupDir), Keys: k, Clock: a.clock, Interval: a.cfg.BackupInterval,
		Policy: backup.DefaultPolicy, Queue: a.queue, Audit: a.audit, Host: host, Log: log,
		Event: operatorEvent("zorgkluis serve: backup schedule")}
	s.Event.UserID, s.Event.UserName = "system:backup", "backup schedule"
	if len(k.Identities) > 0 {
		if s.Checker, err = checkerFor(a.cfg); err != nil {
			log.Warn("backups will not be restore-tested", "err", err)
			s.Checker = nil
		}
	} else {
		log.Warn("backups will not be restore-tested: the backup identity is not on this server", "identity", a.cfg.BackupIdentity)
	}
	last := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zorgkluis_backup_last_success_timestamp_seconds", Help: "When the newest backup was made (DP-5)."})
	size := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zorgkluis_backup_last_bytes", Help: "Size of the newest backup, encrypted."})
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "zorgkluis_backup_failures_total", Help: "Backups that failed."})
	tested := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zorgkluis_backup_restore_test_ok", Help: "1 when the newest backup's restore test passed, 0 when it failed."})
	testTime := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zorgkluis_backup_restore_test_seconds", Help: "How long the newest restore test took."})
	reg.MustRegister(last, size, failed, tested, testTime)
	s.OnBackup = func(m backup.Manifest, err error) {
		if err != nil {
			failed.Inc()
			return
		}
		last.Set(float64(m.Created.Unix()))
		size.Set(float64(m.Bytes))
	}
	s.OnCheck = func(r backup.CheckResult) {
		tested.Set(map[bool]float64{true: 1, false: 0}[r.OK])
		if d, err := time.ParseDuration(r.Took); err == nil {
			testTime.Set(d.Seconds())
		}
	}
	go s.Run(ctx)
	log.Info("backup schedule on", "every", a.cfg.BackupInterval, "to", a.cfg.BackupDir, "restore_test", s.Checker != nil)
	return ready, nil
}

// logClock logs the clock's offset as evidence (GOV-3, MedMij A.12.4.4): a
// minute after start, when the first check is in, then every hour.
func logClock(ctx context.Context, a *app, w *clockwatch.Watcher, log *slog.Logger) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	job := func(ctx context.Context) error {
		st := w.Status()
		if st.Answered == 0 {
			return nil // no server answered: nothing measured to show
		}
		ev := operatorEvent("zorgkluis serve: clock watch")
		ev.UserID, ev.UserName = "system:clockwatch", "clock watch"
		detail := fmt.Sprintf("%s from NTP time (bound ±%s, %d servers answered)", st.Offset.Round(time.Millisecond), a.cfg.ClockMaxOffset, st.Answered)
		_, err := a.audit.Append(ctx, audit.Evidence(ev, audit.FactClock, st.Within, detail))
		return err
	}
	if err := job(ctx); err != nil && ctx.Err() == nil {
		log.Error("clock evidence", "err", err)
	}
	every(ctx, time.Hour, log, "clock evidence", job)
}
