//! Child processes in process groups of their own, and the signals that stop the stack.
//!
//! `wrangler dev` is node plus two `workerd` processes: signalling only the process we spawned
//! leaves workerd behind, so every service runs in its own process group and is stopped as a
//! group (SIGTERM, then SIGKILL after a grace period). On Linux each child also gets SIGTERM
//! when devstack itself dies (`PR_SET_PDEATHSIG`), so even a SIGKILLed devstack does not leave
//! a wrangler running. devstack also adopts its orphans (a child subreaper), so the workerd
//! processes a stopped wrangler leaves are reaped here rather than left as zombies.

#![expect(
    unsafe_code,
    reason = "process groups, signals and prctl are libc calls; each block says why it is sound"
)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Spawns `cmd` as the leader of a new process group.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
}

/// SIGTERM to the child's whole group, up to `grace` for the leader to exit, then SIGKILL to
/// whatever is left of the group. Returns whether the leader needed the SIGKILL.
pub fn stop(child: &mut Child, grace: Duration) -> bool {
    let pgid = child.id() as libc::pid_t;
    if pgid <= 1 {
        return false;
    }
    // SAFETY: signals a process group this process created; no memory is involved.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let start = Instant::now();
    let mut exited = false;
    while start.elapsed() < grace {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Members that outlive the leader (workerd) go too. SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
    reap_group(pgid);
    !exited
}

/// On Linux, makes this process the parent of its orphaned descendants (workerd, once its
/// wrangler has exited), so that [`stop`] can reap them instead of leaving zombies behind when
/// PID 1 does not reap.
pub fn adopt_orphans() {
    #[cfg(target_os = "linux")]
    // SAFETY: a prctl on this process; no memory is involved.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// Waits (up to 2 s) for the group's remaining members that are our children, after SIGKILL.
fn reap_group(pgid: libc::pid_t) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let mut status = 0;
        // SAFETY: waits for children in the group this process created; `status` is ours.
        match unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) } {
            0 => std::thread::sleep(Duration::from_millis(10)),
            pid if pid > 0 => {}
            _ => return, // ECHILD: none left
        }
    }
}

static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    CAUGHT.store(signal, Ordering::SeqCst);
}

/// From now on SIGINT, SIGTERM and SIGHUP only set a flag ([`caught`]); the stack stops itself.
pub fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

/// The stop signal received, if any.
pub fn caught() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The signal's name, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
