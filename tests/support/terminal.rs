//! A process on a real pseudo-terminal (portable-pty), for testing what the toolkit asks when
//! a person is there: wait (bounded) for a prompt, type an answer. The process is killed when
//! the guard is dropped.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, PtySize};

/// A running process whose terminal the test holds.
pub struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<String>>,
    /// The thread that copies the terminal's output into `screen`; it ends when the process
    /// (the terminal's last user) has gone and everything it wrote has been read.
    reader: std::thread::JoinHandle<()>,
    seen: usize,
}

impl Terminal {
    /// Starts `program` with `args` in `cwd` on a new terminal; `env` is added to this
    /// process's environment and `remove` taken out of it.
    pub fn spawn(
        program: &Path,
        args: &[&str],
        cwd: &Path,
        env: &[(&str, &std::ffi::OsStr)],
        remove: &[&str],
    ) -> Terminal {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 240,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("opening a pseudo-terminal");
        let mut command = CommandBuilder::new(program);
        command.args(args);
        command.cwd(cwd);
        command.env("TERM", "xterm");
        for (key, value) in env {
            command.env(key, value);
        }
        for key in remove {
            command.env_remove(key);
        }
        let child = pty
            .slave
            .spawn_command(command)
            .expect("starting on the terminal");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("terminal reader");
        let writer = pty.master.take_writer().expect("terminal writer");
        let screen = Arc::new(Mutex::new(String::new()));
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let _master = pty.master;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("screen")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            child,
            writer,
            screen,
            reader,
            seen: 0,
        }
    }

    /// Everything the process wrote to the terminal (and the echo of what was typed).
    pub fn screen(&self) -> String {
        self.screen.lock().expect("screen").clone()
    }

    /// Waits up to `timeout` for `needle` after what was already matched; panics with the
    /// screen if it does not come.
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let screen = self.screen.lock().expect("screen");
                if let Some(at) = screen[self.seen..].find(needle) {
                    self.seen += at + needle.len();
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear on the terminal:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `text` and Enter.
    pub fn send_line(&mut self, text: &str) {
        write!(self.writer, "{text}\r").expect("typing");
        self.writer.flush().expect("typing");
    }

    /// Waits up to `timeout` for the process to exit, then (up to 2 s more) until all it
    /// wrote is on [`Terminal::screen`]; true when it succeeded.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting") {
                crate::harness::read_to_the_end(
                    std::slice::from_ref(&self.reader),
                    Duration::from_secs(2),
                );
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
