//! Network namespaces: one per sandbox, created ahead of need by a pool.
//!
//! A namespace is held by an open fd (no bind mount under `/run`), so it cannot outlive the process
//! that owns it. Each has `lo` up and a veth pair: `eth0` inside with the second address of a /30 from
//! the configured range, the host end (`<prefix><slot>`) with the first, and a default route via the
//! host end. All per-namespace work is plain netlink on a short-lived thread; creating one costs about a
//! millisecond, which the pool keeps off the spawn path.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{setns, unshare, CloneFlags};
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::protocols::NETLINK_ROUTE;
use rtnetlink::sys::{Socket, SocketAddr as NetlinkAddr};
use rtnetlink::{
    AddressMessageBuilder, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::error::{Result, SandboxError};

/// Name of the interface inside every namespace.
const INNER_INTERFACE: &str = "eth0";
/// Index of `lo`, the first device of every network namespace.
const LOOPBACK_INDEX: u32 = 1;
/// How many occupied slots (veth names taken by another process) `take` skips before giving up.
const MAX_SLOT_ATTEMPTS: usize = 64;
/// Pause of the refill thread after a failed creation, so a broken host is not hammered.
const REFILL_BACKOFF: Duration = Duration::from_secs(1);

/// How sandbox networks are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Private IPv4 range the /30 blocks are cut from.
    pub subnet: Ipv4Addr,
    /// Prefix length of `subnet`; at most 30.
    pub prefix_len: u8,
    /// Prefix of host-side veth names (at most 8 characters). Two Strato processes on one host must
    /// use different prefixes and subnets.
    pub interface_prefix: String,
    /// Namespaces kept ready.
    pub pool_size: usize,
    /// Install a masquerade rule for `subnet` and enable IPv4 forwarding once at pool start.
    pub egress_nat: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            subnet: Ipv4Addr::new(10, 200, 0, 0),
            prefix_len: 16,
            interface_prefix: "stv".to_string(),
            pool_size: 4,
            egress_nat: true,
        }
    }
}

impl NetworkConfig {
    fn validate(&self) -> Result<()> {
        let prefix_ok = !self.interface_prefix.is_empty()
            && self.interface_prefix.len() <= 8
            && self
                .interface_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric());
        if !prefix_ok || self.prefix_len > 30 {
            return Err(SandboxError::InvalidSpec(format!(
                "network: interface prefix {:?} must be 1-8 ASCII alphanumerics and the prefix length {} at most 30",
                self.interface_prefix, self.prefix_len
            )));
        }
        Ok(())
    }

    fn slot_count(&self) -> u32 {
        1u32 << (30 - u32::from(self.prefix_len))
    }

    /// Host-end and inside addresses of a slot's /30.
    fn slot_addresses(&self, slot: u32) -> (Ipv4Addr, Ipv4Addr) {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        let block = (u32::from(self.subnet) & mask) + slot * 4;
        (Ipv4Addr::from(block + 1), Ipv4Addr::from(block + 2))
    }

    fn range(&self) -> String {
        format!("{}/{}", self.subnet, self.prefix_len)
    }
}

/// The network a sandbox lives in: its own namespace, or the host's in fallback mode.
#[derive(Debug)]
pub struct NetNamespace {
    kind: NetKind,
}

#[derive(Debug)]
enum NetKind {
    Host,
    Isolated(IsolatedNet),
}

#[derive(Debug)]
struct IsolatedNet {
    fd: OwnedFd,
    host_interface: String,
    host_address: Ipv4Addr,
    address: Ipv4Addr,
    slot: u32,
    slots: Arc<SlotAllocator>,
}

impl Drop for IsolatedNet {
    fn drop(&mut self) {
        // Deleting the host end deletes the pair; the namespace itself goes with the last fd or socket.
        if let Err(e) = delete_link(&self.host_interface) {
            tracing::warn!(interface = %self.host_interface, error = %e, "deleting veth failed");
        }
        self.slots.release(self.slot);
    }
}

impl NetNamespace {
    /// The host's own network, used by fallback mode.
    pub fn host() -> Self {
        NetNamespace {
            kind: NetKind::Host,
        }
    }

    /// Whether this is a private namespace (false: the host's network).
    pub fn is_isolated(&self) -> bool {
        matches!(self.kind, NetKind::Isolated(_))
    }

    /// The sandbox's address on `eth0`, if isolated.
    pub fn address(&self) -> Option<Ipv4Addr> {
        match &self.kind {
            NetKind::Isolated(net) => Some(net.address),
            NetKind::Host => None,
        }
    }

    /// The host end of the veth pair (the sandbox's gateway), if isolated.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        match &self.kind {
            NetKind::Isolated(net) => Some(net.host_address),
            NetKind::Host => None,
        }
    }

    /// Name of the host end of the veth pair, if isolated.
    pub fn host_interface(&self) -> Option<&str> {
        match &self.kind {
            NetKind::Isolated(net) => Some(&net.host_interface),
            NetKind::Host => None,
        }
    }

    /// Opens a TCP listener inside this network.
    ///
    /// Isolated: bound in the namespace at exactly `addr`, so every sandbox can be given the same
    /// address (e.g. `127.0.0.1:9001`); the socket stays in the namespace whichever thread serves it.
    /// Host (fallback): bound at `addr`'s IP with port 0, since a fixed port would collide between
    /// sandboxes; read the port with `local_addr()`.
    ///
    /// The listener is blocking; call `set_nonblocking(true)` before handing it to tokio.
    pub fn bind_tcp(&self, addr: SocketAddr) -> Result<TcpListener> {
        match &self.kind {
            NetKind::Host => TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                .map_err(|e| SandboxError::sys("bind", e)),
            NetKind::Isolated(_) => self
                .run_inside(|| TcpListener::bind(addr))?
                .map_err(|e| SandboxError::sys("bind", e)),
        }
    }

    /// Opens several TCP listeners and UDP sockets inside this network at once, as
    /// [`NetNamespace::bind_tcp`] does for one: in a namespace at exactly the addresses given, on the
    /// host at their IPs with port 0. One namespace thread serves them all, so each extra socket
    /// costs a `bind`, not a thread.
    pub fn bind_many(
        &self,
        tcp: &[SocketAddr],
        udp: &[SocketAddr],
    ) -> Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
        let port_of = |addr: &SocketAddr| match self.kind {
            NetKind::Host => SocketAddr::new(addr.ip(), 0),
            NetKind::Isolated(_) => *addr,
        };
        let bind = || -> io::Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
            let listeners = tcp
                .iter()
                .map(|a| TcpListener::bind(port_of(a)))
                .collect::<io::Result<_>>()?;
            let sockets = udp
                .iter()
                .map(|a| UdpSocket::bind(port_of(a)))
                .collect::<io::Result<_>>()?;
            Ok((listeners, sockets))
        };
        self.run_inside(bind)?
            .map_err(|e| SandboxError::sys("bind", e))
    }

    /// Runs `task` on a short-lived thread that has joined this network namespace (on the calling
    /// thread's network for the host kind). Sockets created by `task` stay in the namespace.
    pub fn run_inside<T: Send>(&self, task: impl FnOnce() -> T + Send) -> Result<T> {
        match &self.kind {
            NetKind::Host => Ok(task()),
            NetKind::Isolated(net) => std::thread::scope(|scope| {
                let joined = scope.spawn(|| {
                    setns(net.fd.as_fd(), CloneFlags::CLONE_NEWNET)
                        .map_err(|e| SandboxError::sys("setns(net)", e))?;
                    Ok(task())
                });
                joined.join().unwrap_or_else(|_| {
                    Err(SandboxError::sys(
                        "namespace thread",
                        io::Error::other("panicked"),
                    ))
                })
            }),
        }
    }

    /// The namespace fd a spawning child `setns`-es into.
    pub(crate) fn namespace_fd(&self) -> Option<&OwnedFd> {
        match &self.kind {
            NetKind::Isolated(net) => Some(&net.fd),
            NetKind::Host => None,
        }
    }
}

/// Which /30 blocks of the range are in use by this process.
#[derive(Debug)]
struct SlotAllocator {
    capacity: u32,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    used: BTreeSet<u32>,
    /// Allocation goes round the range, so a just-released slot (whose veth the kernel may still be
    /// tearing down) is not handed out again at once.
    cursor: u32,
}

impl SlotAllocator {
    /// An allocator whose first slot is `start` (modulo the capacity).
    fn starting_at(capacity: u32, start: u32) -> Self {
        SlotAllocator {
            capacity,
            state: Mutex::new(SlotState {
                used: BTreeSet::new(),
                cursor: start.checked_rem(capacity).unwrap_or(0),
            }),
        }
    }

    /// Where this process starts looking: spread by its pid, so Strato processes sharing a host
    /// (test suites run several at once) rarely walk over each other's veth names, each of which
    /// costs a refused creation.
    fn for_this_process(capacity: u32) -> Self {
        Self::starting_at(capacity, std::process::id().wrapping_mul(2_654_435_761))
    }

    fn allocate(&self) -> Option<u32> {
        let mut state = lock(&self.state);
        for step in 0..self.capacity {
            let slot = (state.cursor + step) % self.capacity;
            if state.used.insert(slot) {
                state.cursor = (slot + 1) % self.capacity;
                return Some(slot);
            }
        }
        None
    }

    fn release(&self, slot: u32) {
        lock(&self.state).used.remove(&slot);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves the data consistent (single inserts and removes).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps `pool_size` namespaces ready and refills in the background as they are taken.
#[derive(Debug)]
pub struct NetNamespacePool {
    shared: Arc<PoolShared>,
    refiller: Option<JoinHandle<()>>,
    nat_warning: Option<String>,
}

#[derive(Debug)]
struct PoolShared {
    config: NetworkConfig,
    slots: Arc<SlotAllocator>,
    state: Mutex<PoolState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct PoolState {
    ready: VecDeque<NetNamespace>,
    shutdown: bool,
}

impl NetNamespacePool {
    /// Starts the pool: creates one namespace right away (which proves the host supports them),
    /// installs egress NAT when configured, and starts the refill thread.
    pub fn start(config: NetworkConfig) -> Result<Self> {
        config.validate()?;
        let slots = Arc::new(SlotAllocator::for_this_process(config.slot_count()));
        let first = create_namespace(&config, &slots)?;
        let nat_warning = if config.egress_nat {
            install_egress_nat(&config).err()
        } else {
            None
        };
        let shared = Arc::new(PoolShared {
            config,
            slots,
            state: Mutex::new(PoolState {
                ready: VecDeque::from([first]),
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let refill_shared = Arc::clone(&shared);
        let refiller = std::thread::Builder::new()
            .name("strato-netns-pool".to_string())
            .spawn(move || refill(&refill_shared))
            .map_err(|e| SandboxError::sys("spawn pool thread", e))?;
        Ok(NetNamespacePool {
            shared,
            refiller: Some(refiller),
            nat_warning,
        })
    }

    /// Takes a ready namespace, or creates one on the spot when the pool is empty.
    pub fn take(&self) -> Result<NetNamespace> {
        let ready = lock(&self.shared.state).ready.pop_front();
        self.shared.wake.notify_all();
        match ready {
            Some(namespace) => Ok(namespace),
            None => create_namespace(&self.shared.config, &self.shared.slots),
        }
    }

    /// Namespaces ready to be taken now.
    pub fn ready_count(&self) -> usize {
        lock(&self.shared.state).ready.len()
    }

    /// Why egress NAT could not be installed, when it was asked for and failed.
    pub fn nat_warning(&self) -> Option<&str> {
        self.nat_warning.as_deref()
    }
}

impl Drop for NetNamespacePool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.notify_all();
        if let Some(refiller) = self.refiller.take() {
            let _ = refiller.join();
        }
        let drained: Vec<_> = lock(&self.shared.state).ready.drain(..).collect();
        drop(drained);
    }
}

fn refill(shared: &PoolShared) {
    let mut state = lock(&shared.state);
    while !state.shutdown {
        if state.ready.len() >= shared.config.pool_size {
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        }
        drop(state);
        let created = create_namespace(&shared.config, &shared.slots);
        state = lock(&shared.state);
        match created {
            Ok(namespace) => state.ready.push_back(namespace),
            Err(e) => {
                tracing::warn!(error = %e, "refilling the network namespace pool failed");
                state = shared
                    .wake
                    .wait_timeout(state, REFILL_BACKOFF)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
        }
    }
}

/// Creates one namespace in a free slot, skipping slots whose veth name another process holds.
fn create_namespace(config: &NetworkConfig, slots: &Arc<SlotAllocator>) -> Result<NetNamespace> {
    for _ in 0..MAX_SLOT_ATTEMPTS {
        let slot = slots
            .allocate()
            .ok_or_else(|| SandboxError::AddressesExhausted(config.range()))?;
        let host_interface = format!("{}{}", config.interface_prefix, slot);
        let (host_address, address) = config.slot_addresses(slot);
        let built = std::thread::scope(|scope| {
            scope
                .spawn(|| build_namespace(&host_interface, host_address, address))
                .join()
                .unwrap_or_else(|_| {
                    Err(SandboxError::sys(
                        "namespace thread",
                        io::Error::other("panicked"),
                    ))
                })
        });
        match built {
            Ok(fd) => {
                return Ok(NetNamespace {
                    kind: NetKind::Isolated(IsolatedNet {
                        fd,
                        host_interface,
                        host_address,
                        address,
                        slot,
                        slots: Arc::clone(slots),
                    }),
                })
            }
            Err(SandboxError::Netlink { message, .. }) if message.contains("File exists") => {
                // Keep the slot marked used: another process owns this name.
                continue;
            }
            Err(e) => {
                slots.release(slot);
                return Err(e);
            }
        }
    }
    Err(SandboxError::AddressesExhausted(config.range()))
}

/// Runs on a dedicated thread, which it moves into a new network namespace: unshare(CLONE_NEWNET)
/// affects only the calling thread, and the thread ends right after.
fn build_namespace(
    host_interface: &str,
    host_address: Ipv4Addr,
    address: Ipv4Addr,
) -> Result<OwnedFd> {
    let mut host = RouteSocket::open()?;
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| SandboxError::sys("unshare(net)", e))?;
    let fd: OwnedFd = File::open("/proc/thread-self/ns/net")
        .map_err(|e| SandboxError::io("open", "/proc/thread-self/ns/net", e))?
        .into();
    let mut inside = RouteSocket::open()?;

    // The peer is created directly inside the namespace, already named eth0.
    let peer = LinkUnspec::new_with_name(INNER_INTERFACE)
        .setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .build();
    let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_interface.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .up()
        .build();
    host.request(
        "create veth",
        RouteNetlinkMessage::NewLink(veth),
        NLM_F_CREATE | NLM_F_EXCL,
    )?;
    let host_index = host.link_index(host_interface)?;
    host.add_address(host_index, host_address)?;

    inside.request(
        "set lo up",
        RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(LOOPBACK_INDEX).up().build()),
        0,
    )?;
    let inner_index = inside.link_index(INNER_INTERFACE)?;
    inside.add_address(inner_index, address)?;
    inside.request(
        "set eth0 up",
        RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(inner_index).up().build()),
        0,
    )?;
    let default_route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(host_address)
        .output_interface(inner_index)
        .build();
    inside.request(
        "add default route",
        RouteNetlinkMessage::NewRoute(default_route),
        NLM_F_CREATE | NLM_F_EXCL,
    )?;
    Ok(fd)
}

/// Deletes a link in the calling thread's network namespace by name.
fn delete_link(name: &str) -> Result<()> {
    let mut socket = RouteSocket::open()?;
    socket.request(
        "delete link",
        RouteNetlinkMessage::DelLink(LinkUnspec::new_with_name(name).build()),
        0,
    )?;
    Ok(())
}

/// Prefix length of every veth address: a /30 holds exactly the host end and the sandbox.
const VETH_PREFIX_LEN: u8 = 30;

/// A blocking rtnetlink socket in the network namespace of the thread that opened it.
struct RouteSocket {
    socket: Socket,
    sequence: u32,
}

impl RouteSocket {
    fn open() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| netlink_error("open socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| netlink_error("bind socket", e))?;
        socket
            .connect(&NetlinkAddr::new(0, 0))
            .map_err(|e| netlink_error("connect socket", e))?;
        Ok(RouteSocket {
            socket,
            sequence: 0,
        })
    }

    /// Sends one request and collects the answers up to the kernel's acknowledgement.
    fn request(
        &mut self,
        operation: &'static str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.sequence += 1;
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        request.header.sequence_number = self.sequence;
        request.finalize();
        let mut buffer = vec![0; request.buffer_len()];
        request.serialize(&mut buffer);
        self.socket
            .send(&buffer, 0)
            .map_err(|e| netlink_error(operation, e))?;

        let mut answers = Vec::new();
        loop {
            let (datagram, _) = self
                .socket
                .recv_from_full()
                .map_err(|e| netlink_error(operation, e))?;
            let mut offset = 0;
            while offset < datagram.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[offset..])
                    .map_err(|e| SandboxError::Netlink {
                        operation,
                        message: e.to_string(),
                    })?;
                let length = reply.header.length as usize;
                if length == 0 {
                    break;
                }
                offset += (length + 3) & !3;
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(error) if error.code.is_some() => {
                        return Err(netlink_error(operation, error.to_io()))
                    }
                    NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                    _ => {}
                }
            }
        }
    }

    fn link_index(&mut self, name: &str) -> Result<u32> {
        let answers = self.request(
            "get link",
            RouteNetlinkMessage::GetLink(LinkUnspec::new_with_name(name).build()),
            0,
        )?;
        answers
            .into_iter()
            .find_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(LinkMessage { header, .. }) => Some(header.index),
                _ => None,
            })
            .ok_or_else(|| SandboxError::Netlink {
                operation: "get link",
                message: format!("no link named {name}"),
            })
    }

    fn add_address(&mut self, index: u32, address: Ipv4Addr) -> Result<()> {
        let message = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(address, VETH_PREFIX_LEN)
            .build();
        self.request(
            "add address",
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }
}

fn netlink_error(operation: &'static str, error: io::Error) -> SandboxError {
    SandboxError::Netlink {
        operation,
        message: error.to_string(),
    }
}

/// Enables forwarding and masquerades the sandbox range, with whichever of `nft` or `iptables` the
/// host has. Done once per pool; the per-namespace path never runs a command.
fn install_egress_nat(config: &NetworkConfig) -> std::result::Result<(), String> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| format!("enabling IPv4 forwarding: {e}"))?;
    let range = config.range();
    let table = format!("strato_{}", config.interface_prefix);
    let ruleset = format!(
        "add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {range} oifname != \"{prefix}*\" masquerade\n  }}\n}}\n",
        prefix = config.interface_prefix
    );
    let nft = run_with_input("nft", &["-f", "-"], &ruleset);
    if nft.is_ok() {
        return Ok(());
    }
    let interfaces = format!("{}+", config.interface_prefix);
    let rule = ["-s", &range, "!", "-o", &interfaces, "-j", "MASQUERADE"];
    let present = run_with_input(
        "iptables",
        &[&["-t", "nat", "-C", "POSTROUTING"][..], &rule[..]].concat(),
        "",
    );
    if present.is_ok() {
        return Ok(());
    }
    run_with_input(
        "iptables",
        &[&["-t", "nat", "-A", "POSTROUTING"][..], &rule[..]].concat(),
        "",
    )
    .map_err(|iptables| {
        format!(
            "sandboxes have no egress: nft failed ({}) and iptables failed ({iptables})",
            nft.err().unwrap_or_default()
        )
    })
}

fn run_with_input(program: &str, args: &[&str], input: &str) -> std::result::Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("{program}: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_consecutive_slash_30_blocks() {
        let config = NetworkConfig::default();
        assert_eq!(
            config.slot_addresses(0),
            (Ipv4Addr::new(10, 200, 0, 1), Ipv4Addr::new(10, 200, 0, 2))
        );
        assert_eq!(
            config.slot_addresses(65),
            (Ipv4Addr::new(10, 200, 1, 5), Ipv4Addr::new(10, 200, 1, 6))
        );
        assert_eq!(config.slot_count(), 16384);
    }

    #[test]
    fn allocator_goes_round_and_never_hands_out_a_used_slot() {
        let slots = SlotAllocator::starting_at(3, 0);
        assert_eq!(slots.allocate(), Some(0));
        assert_eq!(slots.allocate(), Some(1));
        slots.release(0);
        assert_eq!(slots.allocate(), Some(2));
        assert_eq!(slots.allocate(), Some(0));
        assert_eq!(slots.allocate(), None);
    }

    #[test]
    fn an_allocator_can_start_anywhere_and_still_goes_round() {
        let slots = SlotAllocator::starting_at(3, 5);
        assert_eq!(slots.allocate(), Some(2));
        assert_eq!(slots.allocate(), Some(0));
        assert_eq!(slots.allocate(), Some(1));
        assert_eq!(slots.allocate(), None);
        assert!(SlotAllocator::for_this_process(16384)
            .allocate()
            .is_some_and(|s| s < 16384));
    }

    #[test]
    fn long_interface_prefix_is_refused() {
        let config = NetworkConfig {
            interface_prefix: "waytoolong".to_string(),
            ..NetworkConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
