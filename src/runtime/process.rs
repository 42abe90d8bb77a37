//! Spawning helper processes (monitors, `runtime exec`) from the agent.

/// Unblock every signal in a child between fork and exec: the agent blocks
/// its termination signals for its signalfd, and a child inheriting that
/// mask would pass it on to containers, which would then ignore SIGTERM
/// (bench/README.md, "Dependencies and their cost").
///
/// # Safety
/// Call only between fork and exec (`CommandExt::pre_exec`): it makes only
/// async-signal-safe calls on memory the child owns.
pub unsafe fn clear_signal_mask() {
    // SAFETY: a zeroed sigset_t initialised by sigemptyset; sigprocmask only
    // reads it. Both are async-signal-safe.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}
