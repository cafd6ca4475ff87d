// Package sdnotify tells systemd how the publisher and subscriber
// programs are doing, over the sd_notify protocol
// (github.com/coreos/go-systemd/v22/daemon): READY=1 once serving or
// attached, WATCHDOG=1 at half of WATCHDOG_USEC only while the program's
// loop makes progress, STATUS= with a one-line summary, STOPPING=1 on
// shutdown. Without NOTIFY_SOCKET (not run by systemd) every call does
// nothing.
//
//	n := sdnotify.New(log)
//	var prog sdnotify.Progress
//	go n.Watchdog(ctx, &prog, func() string { return "42 published" })
//	n.Ready("serving imu")
//	for ... { prog.Tick() }   // or prog.IdleUntil(due) before a planned wait
//	n.Stopping("stopping")
//
// A Notifier may be used from any goroutine; a Progress is ticked by the
// loop and read by Watchdog.
package sdnotify

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/clock"
)

// Notifier sends state changes to systemd.
type Notifier struct {
	log      *zap.Logger
	watchdog time.Duration // WATCHDOG_USEC; 0: no watchdog
}

// New reads the environment systemd set (NOTIFY_SOCKET, WATCHDOG_USEC,
// WATCHDOG_PID).
func New(log *zap.Logger) *Notifier {
	n := &Notifier{log: log}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings ignored", zap.Error(err))
	}
	n.watchdog = d
	return n
}

// WatchdogInterval is the watchdog timeout systemd set; 0 if none.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog }

func (n *Notifier) send(state ...string) {
	if _, err := daemon.SdNotify(false, strings.Join(state, "\n")); err != nil {
		n.log.Debug("sd_notify", zap.Error(err))
	}
}

// status is a STATUS= line: one line, whatever the text.
func status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

// Ready says the program is serving or attached.
func (n *Notifier) Ready(s string) { n.send(daemon.SdNotifyReady, status(s)) }

// Status updates the one-line summary.
func (n *Notifier) Status(s string) { n.send(status(s)) }

// Stopping says the program is shutting down.
func (n *Notifier) Stopping(s string) { n.send(daemon.SdNotifyStopping, status(s)) }

// Watchdog sends WATCHDOG=1 and the status every half watchdog interval
// for as long as p shows progress, until ctx ends; without a watchdog it
// only updates the status, every 10 s. A loop that stops making progress
// stops the pings, and systemd acts on its WatchdogSec.
func (n *Notifier) Watchdog(ctx context.Context, p *Progress, summary func() string) {
	every := n.watchdog / 2
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	p.alive() // the start counts as progress
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch {
		case n.watchdog == 0:
			n.send(status(summary()))
		case p.alive():
			n.send(daemon.SdNotifyWatchdog, status(summary()))
		default:
			n.send(status("stalled: " + summary()))
		}
	}
}

// Progress is how a loop shows it moves: Tick when it does work, IdleUntil
// before a wait it planned (a paced publisher's sleep), so a slow schedule
// is not taken for a stall.
type Progress struct {
	ticks     atomic.Uint64
	idleUntil atomic.Int64 // clock.Mono
	seen      uint64       // Watchdog's
}

// Tick records progress.
func (p *Progress) Tick() { p.ticks.Add(1) }

// IdleUntil records that the loop waits, on purpose, until the
// clock.Mono time t; it counts as progress until then.
func (p *Progress) IdleUntil(t int64) {
	p.ticks.Add(1)
	p.idleUntil.Store(t)
}

// alive reports whether the loop ticked since the last call, or is in a
// planned wait. Only Watchdog calls it.
func (p *Progress) alive() bool {
	t := p.ticks.Load()
	moved := t != p.seen
	p.seen = t
	return moved || clock.Mono() < p.idleUntil.Load()
}
