//! The load balancers a rollout runs behind: HAProxy and nginx, from the
//! distribution's packages, started in the foreground as child processes
//! with the configuration files of `deploy/`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use graceful_conformance::Target;
use graceful_conformance::process::Process;

use crate::{Failure, cargo};

/// Which load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Haproxy,
    Nginx,
    /// HAProxy with `deploy/haproxy/haproxy.cfg` less its `retry-on` and
    /// `option redispatch` lines: a balancer nobody told to retry elsewhere
    /// (its own connect retries to the same server stay), to show what the
    /// unready delay does where no retry helps. Run only when named.
    HaproxyNoRetries,
}

impl Kind {
    /// The balancers a rollout runs behind when none is named.
    pub(crate) const ALL: [Kind; 2] = [Kind::Haproxy, Kind::Nginx];
    /// Every balancer `--lb` knows.
    pub(crate) const KNOWN: [Kind; 3] = [Kind::Haproxy, Kind::Nginx, Kind::HaproxyNoRetries];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Haproxy => "haproxy",
            Kind::Nginx => "nginx",
            Kind::HaproxyNoRetries => "haproxy-no-retries",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Kind> {
        Kind::KNOWN.into_iter().find(|k| k.name() == name)
    }

    fn is_haproxy(self) -> bool {
        matches!(self, Kind::Haproxy | Kind::HaproxyNoRetries)
    }

    /// The executable, and the Debian package that ships it.
    fn program(self) -> (&'static str, &'static str) {
        if self.is_haproxy() {
            ("/usr/sbin/haproxy", "haproxy")
        } else {
            ("/usr/sbin/nginx", "nginx")
        }
    }

    /// The configuration file of `deploy/` it runs.
    fn config(self) -> PathBuf {
        let file = if self.is_haproxy() {
            "deploy/haproxy/haproxy.cfg"
        } else {
            "deploy/nginx/nginx.conf"
        };
        cargo::workspace_root().join(file)
    }

    /// Whether `line` of the configuration file is left out.
    fn leaves_out(self, line: &str) -> bool {
        let line = line.trim_start();
        self == Kind::HaproxyNoRetries
            && (line.starts_with("retry-on") || line.starts_with("option redispatch"))
    }
}

/// Installs the load balancer from Debian's packages when it is missing
/// (the package's service is not started: there is no init system here,
/// and the rollout starts its own process).
pub(crate) fn ensure_installed(kind: Kind) -> Result<PathBuf, Failure> {
    let (program, package) = kind.program();
    if Path::new(program).is_file() {
        return Ok(program.into());
    }
    eprintln!("xtask: installing {package} from the distribution's packages");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| Failure::failed(format!("cannot run apt-get to install {package}: {e}")))
    };
    let install = ["install", "-y", "-q", "--no-install-recommends", package];
    let mut status = apt(&install)?;
    if !status.success() {
        // A fresh machine may have no package lists yet.
        apt(&["update", "-q"])?;
        status = apt(&install)?;
    }
    if !status.success() || !Path::new(program).is_file() {
        return Err(Failure::failed(format!(
            "{package} is not installed and `apt-get install {package}` failed ({status})"
        )));
    }
    Ok(program.into())
}

/// One running load balancer.
pub(crate) struct Balancer {
    kind: Kind,
    process: Process,
    /// HAProxy's admin socket.
    stats: PathBuf,
    pub(crate) addr: SocketAddr,
}

/// The configuration of `kind` for `backends`, listening on `listen`, with
/// its files under `dir`: the `deploy/` file with one server line per
/// backend (written from the line of the first one), its health checks
/// asking for `health` instead of `/health/ready` (a peer has no readiness
/// endpoint).
fn render(
    kind: Kind,
    listen: SocketAddr,
    backends: &[SocketAddr],
    health: &str,
    dir: &Path,
) -> Result<String, Failure> {
    let path = kind.config();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?;
    let mut out = String::new();
    let mut servers = 0;
    for line in text.lines() {
        if !line.trim_start().starts_with('#') && line.contains("${SERVER_1}") {
            servers += 1;
            for (i, backend) in backends.iter().enumerate() {
                let n = i + 1;
                let line = line
                    .replace("${SERVER_1}", &backend.to_string())
                    .replace(" s1 ", &format!(" s{n} "));
                out.push_str(&line);
                out.push('\n');
            }
            continue;
        }
        if kind.leaves_out(line) {
            continue;
        }
        if !line.trim_start().starts_with('#') && line.contains("httpchk") {
            out.push_str(&line.replace("/health/ready", health));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if servers != 1 {
        return Err(Failure::failed(format!(
            "{} must have exactly one line with ${{SERVER_1}} (found {servers})",
            path.display()
        )));
    }
    Ok(match kind {
        // HAProxy expands the rest itself, from its environment.
        Kind::Haproxy | Kind::HaproxyNoRetries => out,
        Kind::Nginx => out
            .replace("${LISTEN}", &listen.to_string())
            .replace("${PREFIX}", &dir.display().to_string()),
    })
}

impl Balancer {
    /// Starts `kind` in the foreground, listening on `listen` in front of
    /// `backends`, and waits until it accepts connections.
    pub(crate) fn start(
        kind: Kind,
        program: &Path,
        listen: SocketAddr,
        backends: &[SocketAddr],
        health: &str,
        dir: &Path,
    ) -> Result<Balancer, Failure> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
        let config = render(kind, listen, backends, health, dir)?;
        let config_path = dir.join(kind.config().file_name().unwrap_or_default());
        std::fs::write(&config_path, config)
            .map_err(|e| Failure::failed(format!("cannot write {}: {e}", config_path.display())))?;
        // A Unix socket's path has at most 107 bytes, and HAProxy takes
        // 97: a deep scratch directory gets its socket in the temporary
        // directory instead.
        let mut stats = dir.join("haproxy.sock");
        if stats.as_os_str().len() > 97 {
            stats = std::env::temp_dir().join(format!(
                "graceful-rollout-{}-{}.sock",
                std::process::id(),
                listen.port()
            ));
        }
        let config_arg = config_path.display().to_string();
        // HAProxy expands LISTEN and STATS from its environment (nginx's
        // file is filled above); `env` sets them for the child alone.
        let target = Target::new(kind.name(), "/usr/bin/env")
            .arg(format!("LISTEN={listen}"))
            .arg(format!("STATS={}", stats.display()))
            .arg(program);
        let process = Process::spawn(&target, &config_args(kind, dir, &config_arg))
            .map_err(|e| Failure::failed(format!("cannot start {}: {e}", kind.name())))?;
        let mut balancer = Balancer {
            kind,
            process,
            stats,
            addr: listen,
        };
        balancer.wait_accepting(Duration::from_secs(10))?;
        Ok(balancer)
    }

    fn wait_accepting(&mut self, timeout: Duration) -> Result<(), Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            if std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if let Some(exit) = self.process.try_exit() {
                return Err(Failure::failed(format!(
                    "{} exited at start-up ({}): {}",
                    self.kind.name(),
                    exit.describe(),
                    self.process.stderr().trim()
                )));
            }
            if Instant::now() >= deadline {
                return Err(Failure::failed(format!(
                    "{} did not accept connections on {} within {timeout:?}: {}",
                    self.kind.name(),
                    self.addr,
                    self.process.stderr().trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the balancer routes to backend number `n` (from 1): HAProxy
    /// says so on its admin socket; nginx has no active health checks, so
    /// it routes to any backend it has not seen fail (`None`: unknown).
    pub(crate) fn routes_to(&self, n: usize) -> Option<bool> {
        match self.kind {
            Kind::Nginx => None,
            Kind::Haproxy | Kind::HaproxyNoRetries => {
                Some(haproxy_status(&self.stats, n).is_some_and(|s| s == "UP"))
            }
        }
    }

    /// Waits until the balancer routes to backend `n` again (for nginx,
    /// which cannot say, a fixed pause longer than its `fail_timeout`).
    pub(crate) fn wait_routes_to(&self, n: usize, timeout: Duration) -> Result<Duration, Failure> {
        let started = Instant::now();
        if self.routes_to(n).is_none() {
            std::thread::sleep(Duration::from_millis(2_500));
            return Ok(started.elapsed());
        }
        while started.elapsed() < timeout {
            if self.routes_to(n) == Some(true) {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Failure::failed(format!(
            "{} did not mark server s{n} UP within {timeout:?}",
            self.kind.name()
        )))
    }

    /// What the balancer wrote on standard error.
    pub(crate) fn stderr(&self) -> String {
        self.process.stderr()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        // Its admin socket may be in the temporary directory: leave nothing
        // there (the process itself ends as its field drops).
        let _ = std::fs::remove_file(&self.stats);
    }
}

/// The command line of `kind` in the foreground with `config`: HAProxy's
/// `-db` keeps it from forking, nginx's `daemon off` is in its file.
fn config_args(kind: Kind, dir: &Path, config: &str) -> Vec<String> {
    match kind {
        Kind::Haproxy | Kind::HaproxyNoRetries => vec!["-db".into(), "-f".into(), config.into()],
        Kind::Nginx => vec![
            "-p".into(),
            dir.display().to_string(),
            "-e".into(),
            "stderr".into(),
            "-c".into(),
            config.into(),
        ],
    }
}

/// The `status` column of server `s{n}` in HAProxy's `show stat`.
fn haproxy_status(socket: &Path, n: usize) -> Option<String> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"show stat\n").ok()?;
    let reader = BufReader::new(stream);
    let mut status_col = None;
    let wanted = format!("s{n}");
    for line in reader.lines() {
        let line = line.ok()?;
        let fields: Vec<&str> = line.split(',').collect();
        if let Some(header) = line.strip_prefix("# ") {
            status_col = header.split(',').position(|f| f == "status");
            continue;
        }
        if fields.get(1) == Some(&wanted.as_str()) {
            return fields.get(status_col?).map(|s| (*s).to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SocketAddr, Vec<SocketAddr>) {
        let listen = "127.0.0.1:8000".parse().unwrap();
        let backends = vec![
            "127.0.0.1:8001".parse().unwrap(),
            "127.0.0.1:8002".parse().unwrap(),
        ];
        (listen, backends)
    }

    #[test]
    fn haproxy_gets_one_server_line_per_backend_and_the_health_path() {
        let (listen, backends) = addrs();
        let dir = Path::new("/tmp/rollout-render");
        let ready = render(Kind::Haproxy, listen, &backends, "/health/ready", dir).unwrap();
        assert!(ready.contains("server s1 \"127.0.0.1:8001\""), "{ready}");
        assert!(ready.contains("server s2 \"127.0.0.1:8002\""), "{ready}");
        assert!(
            ready.contains("option httpchk GET /health/ready"),
            "{ready}"
        );

        let live = render(Kind::Haproxy, listen, &backends, "/health/live", dir).unwrap();
        assert!(live.contains("option httpchk GET /health/live"), "{live}");
        assert!(!live.contains("httpchk GET /health/ready"), "{live}");
        // Only the check changes: the rest of the file is the same.
        assert_eq!(
            ready
                .replace("/health/ready", "/health/live")
                .lines()
                .count(),
            live.lines().count()
        );
    }

    #[test]
    fn haproxy_no_retries_leaves_out_only_the_retries_elsewhere() {
        let (listen, backends) = addrs();
        let dir = Path::new("/tmp/rollout-render");
        let with = render(Kind::Haproxy, listen, &backends, "/health/ready", dir).unwrap();
        let without = render(
            Kind::HaproxyNoRetries,
            listen,
            &backends,
            "/health/ready",
            dir,
        )
        .unwrap();
        let directive =
            |text: &str, name: &str| text.lines().any(|line| line.trim_start().starts_with(name));
        assert!(directive(&with, "retry-on") && directive(&with, "option redispatch"));
        assert!(!directive(&without, "retry-on") && !directive(&without, "option redispatch"));
        assert_eq!(with.lines().count(), without.lines().count() + 2);
    }

    #[test]
    fn nginx_gets_its_addresses_filled_in() {
        let (listen, backends) = addrs();
        let dir = Path::new("/tmp/rollout-render");
        let conf = render(Kind::Nginx, listen, &backends, "/health/live", dir).unwrap();
        assert!(
            conf.contains("127.0.0.1:8001") && conf.contains("127.0.0.1:8002"),
            "{conf}"
        );
        assert!(
            !conf.contains("${LISTEN}") && !conf.contains("${PREFIX}"),
            "{conf}"
        );
    }
}
