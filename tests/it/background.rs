//! Programs a test runs for its whole length (secondaries, an ACME server): each in a process
//! group of its own, so that dropping it kills whatever it forked too, and with its output in
//! a log file, so that nothing has to drain it and a failure can show it.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, Command};

/// A running program; its process group is killed when dropped.
pub struct Background {
    child: Child,
    group: Pid,
    log: PathBuf,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = kill_process_group(self.group, Signal::KILL);
    }
}

impl Background {
    /// Starts `command` with its output in `log`; panics naming the Debian `package` that
    /// brings the program when it cannot start.
    pub fn spawn(command: &mut Command, log: PathBuf, package: &str) -> Background {
        let out = std::fs::File::create(&log).expect("create the log");
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                let program = command.as_std().get_program().to_string_lossy();
                panic!("cannot start {program} ({e}): apt-get install {package}")
            });
        let group = Pid::from_raw(child.id().expect("a pid") as i32).expect("a positive pid");
        Background { child, group, log }
    }

    /// How it exited, once it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the program (not to what it forked).
    pub fn signal(&self, signal: Signal) {
        rustix::process::kill_process(self.group, signal).expect("signal the program");
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
