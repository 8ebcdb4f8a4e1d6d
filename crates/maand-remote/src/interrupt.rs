//! Interrupts: what SIGINT and SIGTERM do to a running maand, and the process-wide registry of the
//! children maand started for remote work (ssh sessions and masters, rsync, job commands).
//!
//! [`install`] starts one thread that waits for the signals (through `signal-hook`'s iterator, so
//! nothing runs inside a signal handler). The first signal only sets the flag of the returned
//! [`Interrupt`]: callers finish the step in flight, start nothing new and exit 130. A second
//! signal kills every registered child (its whole process group when it has its own) with SIGKILL
//! and exits 130 at once.
//!
//! Children run in process groups of their own (see [`crate::process`]), so the Ctrl-C a terminal
//! sends to its whole foreground process group reaches maand only, not the step in flight. When
//! maand itself is killed with SIGKILL (or crashes), the kernel kills each child it started
//! ([`crate::parent_death`]): every spawn here goes through it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::procfs;

/// Exit status of a command stopped by an interrupt (128 + SIGINT, as shells report it).
pub const EXIT_CODE: u8 = 130;

const FIRST_SIGNAL_MESSAGE: &str =
    "interrupt: finishing the step in flight, then stopping (press Ctrl-C again to abort now)";
const SECOND_SIGNAL_MESSAGE: &str = "interrupt: aborting";

/// Whether stopping was requested. Clones share one state; cheap to clone and to check.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    requests: Arc<AtomicU64>,
}

impl Interrupt {
    /// A flag no signal sets (tests, library use); [`install`] gives the one signals set.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// True once stopping was requested (a first SIGINT/SIGTERM, or [`Interrupt::request`]).
    pub fn requested(&self) -> bool {
        self.requests.load(Ordering::SeqCst) > 0
    }

    /// Requests stopping, as a first signal does.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }
}

/// Handles SIGINT and SIGTERM from now on as the module comment says, and returns the flag the
/// first signal sets. Later calls return the same flag and register nothing more. If the signals
/// cannot be watched, says so on stderr and returns a flag no signal sets (signals then keep
/// their default effect).
pub fn install() -> Interrupt {
    static INSTALLED: OnceLock<Interrupt> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let interrupt = Interrupt::new();
            if let Err(e) = watch_signals(interrupt.clone()) {
                eprintln!("interrupt: cannot watch SIGINT/SIGTERM ({e}); Ctrl-C stops maand at once");
            }
            interrupt
        })
        .clone()
}

fn watch_signals(interrupt: Interrupt) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    thread::Builder::new().name("maand-interrupt".into()).spawn(move || {
        let mut received = 0u64;
        for _ in signals.forever() {
            received += 1;
            if received == 1 {
                interrupt.request();
                eprintln!("{FIRST_SIGNAL_MESSAGE}");
            } else {
                eprintln!("{SECOND_SIGNAL_MESSAGE}");
                REGISTRY.abort();
            }
        }
    })?;
    Ok(())
}

/// Keeps a child in the registry; dropping it removes the child (do so once it has been reaped).
#[derive(Debug)]
#[must_use = "the child is unregistered when the guard is dropped"]
pub struct Guard {
    registry: &'static Registry,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.registry.unregister(self.id);
    }
}

/// Registers running child `pid` so a second signal kills it: its whole process group when
/// `own_group` (the child leads a group of its own), else the process alone. If maand is already
/// aborting, the child is killed at once.
pub fn register(pid: u32, own_group: bool) -> Guard {
    REGISTRY.register(pid, own_group)
}

/// Sends SIGKILL to every registered child (to its process group when it has its own).
pub fn kill_all() {
    REGISTRY.kill_all();
}

/// Spawns `command` (tied to maand's life, see [`crate::parent_death`]) and registers the child. A
/// spawn under way when the second signal arrives is registered before the kill; none starts after
/// it. `own_group` must say whether `command` starts
/// its own process group.
pub(crate) fn spawn_registered(
    command: &mut std::process::Command,
    own_group: bool,
) -> std::io::Result<(std::process::Child, Guard)> {
    REGISTRY.spawn(command, own_group)
}

/// True while child `pid` is registered (for tests of the modules that register children).
#[cfg(test)]
pub(crate) fn is_registered(pid: u32) -> bool {
    REGISTRY.children().running.values().any(|c| c.pid == pid)
}

static REGISTRY: Registry = Registry::new();

/// The running children maand started.
#[derive(Debug)]
struct Registry {
    /// Held shared from a spawn until its child is registered, exclusively while aborting, so no
    /// child escapes the kill by being spawned during it.
    spawning: RwLock<()>,
    children: Mutex<Children>,
}

#[derive(Debug)]
struct Children {
    next_id: u64,
    running: BTreeMap<u64, Child>,
    aborting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Child {
    pid: u32,
    own_group: bool,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            spawning: RwLock::new(()),
            children: Mutex::new(Children { next_id: 0, running: BTreeMap::new(), aborting: false }),
        }
    }

    fn children(&self) -> MutexGuard<'_, Children> {
        self.children.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(&'static self, pid: u32, own_group: bool) -> Guard {
        let child = Child { pid, own_group };
        let mut children = self.children();
        if children.aborting {
            kill(&[child]);
        }
        let id = children.next_id;
        children.next_id += 1;
        children.running.insert(id, child);
        Guard { registry: self, id }
    }

    fn unregister(&self, id: u64) {
        self.children().running.remove(&id);
    }

    fn spawn(
        &'static self,
        command: &mut std::process::Command,
        own_group: bool,
    ) -> std::io::Result<(std::process::Child, Guard)> {
        let _spawning = self.spawning.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let child = crate::parent_death::spawn(command)?;
        let guard = self.register(child.id(), own_group);
        Ok((child, guard))
    }

    fn kill_all(&self) {
        let children: Vec<Child> = self.children().running.values().copied().collect();
        kill(&children);
    }

    /// The second signal: waits for spawns under way to register, kills every child, and exits
    /// with nothing new spawned in between.
    fn abort(&self) -> ! {
        let _no_spawns = self.spawning.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.children().aborting = true;
        self.kill_all();
        std::process::exit(i32::from(EXIT_CODE));
    }
}

/// SIGKILL to each child's group (when it has its own) and to the child itself.
fn kill(children: &[Child]) {
    let groups: Vec<u32> = children.iter().filter(|c| c.own_group).map(|c| c.pid).collect();
    procfs::send_signal_to("KILL", &children.iter().map(|c| c.pid).collect::<Vec<_>>(), &groups);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{pid_is_alive, process_group};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// A registry of its own per test, so killing its children leaves other tests' alone.
    fn registry() -> &'static Registry {
        Box::leak(Box::new(Registry::new()))
    }

    fn registered(registry: &Registry) -> Vec<u32> {
        registry.children().running.values().map(|c| c.pid).collect()
    }

    fn wait_gone(pid: u32) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if !pid_is_alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn request_sets_the_flag_shared_by_clones() {
        let interrupt = Interrupt::new();
        let clone = interrupt.clone();
        assert!(!interrupt.requested());
        assert!(!clone.requested());
        clone.request();
        assert!(interrupt.requested(), "a clone's request is seen by the original");
        assert!(clone.requested());
        assert!(!Interrupt::new().requested(), "a new flag is independent");
    }

    #[test]
    fn the_guard_keeps_the_child_registered_until_dropped() {
        let registry = registry();
        let first = registry.register(4_000_001, false);
        let second = registry.register(4_000_002, true);
        assert_eq!(registered(registry), vec![4_000_001, 4_000_002]);
        drop(first);
        assert_eq!(registered(registry), vec![4_000_002]);
        drop(second);
        assert!(registered(registry).is_empty());
    }

    #[test]
    fn the_global_registry_holds_a_child_for_the_guards_lifetime() {
        let pid = 4_000_003;
        let guard = register(pid, false);
        assert!(is_registered(pid));
        drop(guard);
        assert!(!is_registered(pid));
    }

    #[test]
    fn kill_all_kills_a_child_in_its_own_group_and_its_grandchildren() {
        let registry = registry();
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 30 & echo $!; sleep 30"]).stdout(Stdio::piped()).process_group(0);
        let (mut child, _guard) = registry.spawn(&mut command, true).unwrap();
        let pid = child.id();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        assert_eq!(process_group(pid), Some(pid), "the child leads a group of its own");
        assert_eq!(process_group(grandchild), Some(pid));
        assert_ne!(process_group(std::process::id()), Some(pid));

        registry.kill_all();
        child.wait().unwrap();
        assert!(wait_gone(grandchild), "the background sleep in the child's group was killed too");
    }

    #[test]
    fn kill_all_kills_a_plain_child_and_spares_unregistered_ones() {
        let registry = registry();
        let mut bystander = Command::new("sleep").arg("30").spawn().unwrap();
        let (mut child, guard) = registry.spawn(Command::new("sleep").arg("30"), false).unwrap();
        registry.kill_all();
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        drop(guard);
        assert!(pid_is_alive(bystander.id()), "a child never registered is left alone");
        bystander.kill().unwrap();
        bystander.wait().unwrap();
    }

    #[test]
    fn a_child_registered_while_aborting_is_killed_at_once() {
        let registry = registry();
        registry.children().aborting = true;
        let (mut child, _guard) = registry.spawn(Command::new("sleep").arg("30"), false).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    }
}
