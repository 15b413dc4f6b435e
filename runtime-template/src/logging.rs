//! The gateway's own log (`tracing` to standard output, written by `tracing-appender`'s
//! thread) and the filter that chooses what it shows: `log.level` from the settings, or the
//! `RUST_LOG` environment variable when it is set. Both take `target=level` directives
//! (`tracing_subscriber::filter::Targets`): no span or field filters, so no regex engine.

use tracing_subscriber::filter::Targets;

/// The environment variable whose directives replace `log.level`.
pub const RUST_LOG: &str = "RUST_LOG";

/// The target of access-log lines (`access=off` in the filter turns the access log off).
pub const ACCESS_TARGET: &str = "access";

/// The filter: `rust_log` (the value of `RUST_LOG`) when set and not blank, else `level`
/// (`log.level`, checked when the settings were read). An unusable `RUST_LOG` is an error
/// naming it.
pub fn filter(level: &str, rust_log: Option<&str>) -> Result<Targets, String> {
    if let Some(directives) = rust_log.filter(|v| !v.trim().is_empty()) {
        return directives.trim().parse().map_err(|e| {
            format!(
                "{RUST_LOG}={directives:?} is not a list of log directives ({e}): use a level (error, warn, info, debug, trace) or comma-separated target=level pairs such as RUST_LOG=info,mgw_runtime=debug, or unset it to use log.level"
            )
        });
    }
    level.parse().map_err(|e| {
        format!("log.level = {level:?} is not a level ({e}): use error, warn, info, debug or trace")
    })
}

/// Whether `filter` lets access-log lines through (they are written at level `info`).
pub fn shows_access_log(filter: &Targets) -> bool {
    filter.would_enable(ACCESS_TARGET, &tracing::Level::INFO)
}

/// Lines of the gateway's own log that may wait for the writer thread; past that, new lines
/// are dropped (the writer is lossy, so a stalled stdout never blocks a request).
///
/// `tracing-appender`'s default is 128,000 lines, and its queue is an array allocated and
/// written in full when the writer starts: 4 MB of resident memory (a third of an idle
/// gateway's) for a log that writes a few lines at start-up and warnings after. The access
/// log has its own queue (`log.access_log_queue`); 1,024 lines take 32 kB.
pub const LOG_QUEUE_LINES: usize = 1024;

/// Installs the global subscriber; the guard flushes queued lines when dropped.
pub fn init(filter: Targets) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(true)
        .thread_name("log-writer")
        .finish(std::io::stdout());
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false),
        )
        .with(filter)
        .try_init();
    guard
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_replaces_the_configured_level() {
        let conf = filter("warn", None).unwrap();
        assert!(!conf.would_enable("mgw_runtime", &Level::INFO));
        let env = filter("warn", Some("info,mgw_runtime::proxy=debug")).unwrap();
        assert!(env.would_enable("mgw_runtime", &Level::INFO));
        assert!(env.would_enable("mgw_runtime::proxy", &Level::DEBUG));
        assert!(!env.would_enable("mgw_runtime", &Level::DEBUG));
        // Blank is unset.
        let blank = filter("warn", Some("  ")).unwrap();
        assert!(!blank.would_enable("x", &Level::INFO));
    }

    #[test]
    fn an_unusable_rust_log_names_the_variable() {
        let err = filter("info", Some("loud=[")).unwrap_err();
        assert!(
            err.starts_with("RUST_LOG=\"loud=[\" is not a list of log directives"),
            "{err}"
        );
        assert!(err.contains("unset it"), "{err}");
    }

    #[test]
    fn the_access_target_follows_the_filter() {
        assert!(shows_access_log(&filter("info", None).unwrap()));
        assert!(!shows_access_log(&filter("warn", None).unwrap()));
        assert!(!shows_access_log(&filter("info,access=off", None).unwrap()));
        assert!(shows_access_log(
            &filter("warn", Some("warn,access=info")).unwrap()
        ));
    }
}
