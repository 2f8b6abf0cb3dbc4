use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The path of a workspace binary in the same target dir as the running test
/// (`target/<profile>/<name>`). Panics with a clear message when it has not been built.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`; \
         scripts/test.sh does)",
        p.display()
    );
    p
}

/// A service binary running as a child process, its output in a log file.
#[derive(Debug)]
pub struct ChildService {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl ChildService {
    /// Spawns `bin` with `args` and extra environment, appending its output to `log`. It runs in
    /// the log's folder, so files it writes to relative paths stay in the test's temp dir.
    pub fn spawn(bin: PathBuf, args: &[&str], env: &[(&str, &str)], log: PathBuf) -> Self {
        let mut s = Self {
            bin,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log,
            child: None,
        };
        s.start();
        s
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(&self.bin);
        if let Some(dir) = self.log.parent() {
            cmd.current_dir(dir);
        }
        let child = cmd
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait up to `secs` for the exit status (SIGKILL after that, and panic).
    pub fn terminate(&mut self, secs: u64) -> ExitStatus {
        let mut c = self.child.take().expect("not running");
        let pid = Pid::from_raw(i32::try_from(c.id()).unwrap());
        let _ = kill(pid, Signal::SIGTERM);
        let status = crate::wait_for(secs, "the service to exit after SIGTERM", || {
            c.try_wait().ok().flatten()
        });
        std::thread::sleep(Duration::from_millis(1));
        status
    }

    /// Waits for the process to exit by itself and returns its status.
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let mut c = self.child.take().expect("not running");
        crate::wait_for(secs, "the process to exit", || c.try_wait().ok().flatten())
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildService {
    fn drop(&mut self) {
        self.kill9();
    }
}
