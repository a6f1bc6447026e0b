//! The DNS answerer of isolated instances.
//!
//! Every instance's network namespace has a UDP socket and a TCP listener at
//! `127.0.0.1:53` (its `/etc/resolv.conf` names nothing else), served by a
//! task of the Strato process. Questions for AWS's names
//! ([`crate::aws_names`]) are answered on the spot with `127.0.0.1`, where
//! Strato's in-namespace listeners are; every other question is relayed
//! unchanged to the host's own name servers (from the host's
//! `/etc/resolv.conf`) from the host's network, over the transport it came
//! by, and their answer relayed back, so other names resolve exactly as the
//! host resolves them. The sockets cost two `bind`s in the namespace thread
//! the instance's other listeners are opened by, and one idle task.
//!
//! A UDP answer larger than the client can take (512 bytes, or the payload
//! size its EDNS record advertises) is cut to its header and question with
//! the TC bit set, so the client asks again over TCP. A question that came
//! over TCP goes to the host's name servers over TCP, and over UDP when none
//! of them takes TCP (container DNS proxies often do not). TCP messages carry
//! RFC 1035's two-byte length prefix; a connection may carry several queries
//! one after another (RFC 7766), answered in order, and is closed after
//! [`TCP_IDLE`] without one; an instance keeps at most
//! [`MAX_TCP_CONNECTIONS`] open.
//!
//! Only what a stub resolver sends is understood: one question per query.
//! An AWS name has an IPv4 address only (an `AAAA` question gets an empty
//! answer, so clients use the `A` one).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

use crate::aws_names::is_aws_name;

/// Where every isolated instance's resolver listens (UDP and TCP).
pub const INSTANCE_DNS_ADDR: &str = "127.0.0.1:53";
/// The `/etc/resolv.conf` of isolated instances.
pub const INSTANCE_RESOLV_CONF: &str = "nameserver 127.0.0.1\n";
/// The address AWS's names resolve to inside an instance.
const AWS_NAME_ADDRESS: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Time-to-live of those answers, in seconds.
const ANSWER_TTL: u32 = 300;
/// How long one upstream server may take before the next is asked.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a client's TCP connection may wait for its next query.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Open TCP connections per instance (a stub resolver uses one at a time).
const MAX_TCP_CONNECTIONS: usize = 16;
/// Largest query read over UDP (a stub resolver's is far smaller).
const MAX_QUERY: usize = 4096;
/// Largest DNS message: a TCP length prefix's range, and an upstream's UDP
/// answer (which may be as large as the client's EDNS size lets it be).
const MAX_MESSAGE: usize = 65_535;
/// What a UDP client without EDNS takes (RFC 1035 section 4.2.1).
const CLASSIC_UDP_SIZE: usize = 512;
const HEADER_LEN: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const FLAG_TC: u8 = 0x02;
const RCODE_FORMERR: u8 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NOTIMP: u8 = 4;

/// The host's name servers, questions for other names go to.
#[derive(Debug, Clone)]
pub struct Upstreams {
    servers: Vec<SocketAddr>,
}

impl Upstreams {
    /// The `nameserver` lines of a `resolv.conf`.
    pub fn from_resolv_conf(text: &str) -> Upstreams {
        let servers = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("nameserver")).then(|| words.next())?
            })
            .filter_map(|address| address.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        Upstreams { servers }
    }

    /// The host's own (`/etc/resolv.conf`; none when it cannot be read).
    pub fn of_host() -> Upstreams {
        Upstreams::from_resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        )
    }

    /// Answers the instance resolver's questions on `udp` and `tcp` until
    /// aborted; aborting also ends the TCP connections and relays in flight.
    pub fn serve(
        self: &Arc<Self>,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> std::io::Result<JoinHandle<()>> {
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let upstreams = self.clone();
        Ok(tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_QUERY];
            let mut relays = JoinSet::new();
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    received = udp.recv_from(&mut buf) => {
                        if let Ok((len, peer)) = received {
                            upstreams.answer_udp(&udp, &buf[..len], peer, &mut relays).await;
                        }
                    }
                    accepted = tcp.accept() => {
                        // Past the limit a connection is closed at once (RFC 7766 lets a
                        // server do so): each one holds a file of the Strato process.
                        if let (Ok((stream, _)), true) =
                            (accepted, connections.len() < MAX_TCP_CONNECTIONS)
                        {
                            connections.spawn(upstreams.clone().answer_tcp(stream));
                        }
                    }
                    Some(_) = relays.join_next() => {}
                    Some(_) = connections.join_next() => {}
                }
            }
        }))
    }

    /// Answers one UDP query: on the spot, or by a relay in `tasks`.
    async fn answer_udp(
        self: &Arc<Self>,
        socket: &Arc<UdpSocket>,
        query: &[u8],
        peer: SocketAddr,
        tasks: &mut JoinSet<()>,
    ) {
        let limit = udp_size_limit(query);
        match local_answer(query) {
            Answer::Local(reply) => {
                let _ = socket.send_to(&fit_udp(reply, limit), peer).await;
            }
            Answer::Ignore => {}
            Answer::Forward => {
                let query = query.to_vec();
                let socket = socket.clone();
                let upstreams = self.clone();
                tasks.spawn(async move {
                    let reply = upstreams
                        .forward(&query, relay_udp)
                        .await
                        .or_else(|| error_reply(&query, RCODE_SERVFAIL));
                    if let Some(reply) = reply {
                        let _ = socket.send_to(&fit_udp(reply, limit), peer).await;
                    }
                });
            }
        }
    }

    /// Answers the queries of one TCP connection in order until the client
    /// closes it, sends something that is no query, or stays idle.
    async fn answer_tcp(self: Arc<Self>, mut stream: TcpStream) {
        loop {
            let query = match tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await {
                Ok(Ok(query)) => query,
                _ => return,
            };
            let reply = match local_answer(&query) {
                Answer::Local(reply) => reply,
                Answer::Ignore => return,
                Answer::Forward => {
                    // Some host resolvers (container DNS proxies among them) take no
                    // TCP: their UDP answer is still better than none.
                    let reply = match self.forward(&query, relay_tcp).await {
                        Some(reply) => Some(reply),
                        None => self.forward(&query, relay_udp).await,
                    };
                    match reply {
                        Some(reply) => reply,
                        None => error_reply(&query, RCODE_SERVFAIL).unwrap_or_default(),
                    }
                }
            };
            if write_framed(&mut stream, &reply).await.is_err() {
                return;
            }
        }
    }

    /// The first answer of a host name server to `query`, asked by `relay`.
    async fn forward<'q, F>(
        &self,
        query: &'q [u8],
        relay: impl Fn(SocketAddr, &'q [u8]) -> F,
    ) -> Option<Vec<u8>>
    where
        F: Future<Output = std::io::Result<Vec<u8>>> + 'q,
    {
        for server in &self.servers {
            if let Ok(Ok(reply)) =
                tokio::time::timeout(UPSTREAM_TIMEOUT, relay(*server, query)).await
            {
                return Some(reply);
            }
        }
        None
    }
}

/// `query` asked of `server` over UDP: the first datagram carrying its id.
async fn relay_udp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    // A reply must carry the query's id; anything else on the socket is ignored.
    loop {
        let len = socket.recv(&mut buf).await?;
        if len >= HEADER_LEN && buf[..2] == query[..2] {
            buf.truncate(len);
            return Ok(buf);
        }
    }
}

/// `query` asked of `server` over a TCP connection of its own.
async fn relay_tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    write_framed(&mut stream, query).await?;
    let reply = read_framed(&mut stream).await?;
    if reply.len() < HEADER_LEN || reply[..2] != query[..2] {
        return Err(std::io::Error::other("answer for another query"));
    }
    Ok(reply)
}

/// One length-prefixed DNS message from a TCP stream.
async fn read_framed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = usize::from(stream.read_u16().await?);
    let mut message = vec![0u8; len];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

/// `message` with its length prefix, in one write.
async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| std::io::Error::other("message over 65535 bytes"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// The largest UDP answer the client of `query` takes: the payload size of
/// its EDNS (OPT) record, never below 512, or 512 without one.
fn udp_size_limit(query: &[u8]) -> usize {
    let advertised = || -> Option<usize> {
        // A stub resolver's query: one question, no answers or authority,
        // and the OPT record first among the additional ones.
        let counts_fit = read_u16(query, 6)? == 0 && read_u16(query, 8)? == 0;
        if !counts_fit || read_u16(query, 10)? == 0 {
            return None;
        }
        let at = parse_question(query)?.end;
        // The OPT record's owner is the root: a single zero byte.
        if *query.get(at)? != 0 || read_u16(query, at + 1)? != TYPE_OPT {
            return None;
        }
        Some(usize::from(read_u16(query, at + 3)?))
    };
    advertised().map_or(CLASSIC_UDP_SIZE, |size| size.max(CLASSIC_UDP_SIZE))
}

/// `reply` as a UDP client of `limit` bytes takes it: whole when it fits,
/// else its header with TC set and its question, nothing more.
fn fit_udp(reply: Vec<u8>, limit: usize) -> Vec<u8> {
    if reply.len() <= limit || reply.len() < HEADER_LEN {
        return reply;
    }
    let question_end = parse_question(&reply)
        .map(|q| q.end)
        .filter(|_| read_u16(&reply, 4) == Some(1));
    let mut cut = reply[..HEADER_LEN].to_vec();
    cut[2] |= FLAG_TC;
    cut[4..HEADER_LEN].fill(0);
    if let Some(end) = question_end {
        cut[5] = 1;
        cut.extend_from_slice(&reply[HEADER_LEN..end]);
    }
    cut
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Answered here (an AWS name, or a malformed query).
    Local(Vec<u8>),
    /// A question for the host's name servers.
    Forward,
    /// Not a query (too short to answer at all, or a response).
    Ignore,
}

/// The question of a query: its name (lower case, dotted) and where it ends.
struct Question {
    name: String,
    qtype: u16,
    qclass: u16,
    end: usize,
}

fn read_u16(message: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(at)?,
        *message.get(at + 1)?,
    ]))
}

fn parse_question(message: &[u8]) -> Option<Question> {
    let mut at = HEADER_LEN;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*message.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Queries carry no compression pointers (0b11xxxxxx) or extended labels.
        if len > 63 {
            return None;
        }
        let label = message.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = read_u16(message, at)?;
    let qclass = read_u16(message, at + 2)?;
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: at + 4,
    })
}

/// A reply header for `query` with `rcode`, `answers` records, and the
/// question copied when it is known.
fn reply_header(query: &[u8], rcode: u8, questions: u16, answers: u16) -> Vec<u8> {
    let recursion_desired = query[2] & 0x01;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]);
    // QR, opcode QUERY, AA, RD as asked; RA; rcode.
    out.push(0x80 | 0x04 | recursion_desired);
    out.push(0x80 | rcode);
    for count in [questions, answers, 0, 0] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out
}

fn error_reply(query: &[u8], rcode: u8) -> Option<Vec<u8>> {
    (query.len() >= HEADER_LEN).then(|| reply_header(query, rcode, 0, 0))
}

fn local_answer(query: &[u8]) -> Answer {
    if query.len() < HEADER_LEN || query[2] & 0x80 != 0 {
        return Answer::Ignore;
    }
    let opcode = (query[2] >> 3) & 0x0f;
    if opcode != 0 {
        return error_reply(query, RCODE_NOTIMP).map_or(Answer::Ignore, Answer::Local);
    }
    let one_question = read_u16(query, 4) == Some(1);
    let question = one_question.then(|| parse_question(query)).flatten();
    let Some(question) = question else {
        return error_reply(query, RCODE_FORMERR).map_or(Answer::Ignore, Answer::Local);
    };
    if !is_aws_name(&question.name) {
        return Answer::Forward;
    }
    let has_address = question.qtype == TYPE_A && question.qclass == CLASS_IN;
    let mut reply = reply_header(query, 0, 1, u16::from(has_address));
    reply.extend_from_slice(&query[HEADER_LEN..question.end]);
    if has_address {
        // The name by pointer to the question (offset 12), type A, class IN.
        reply.extend_from_slice(&[0xc0, 0x0c]);
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&ANSWER_TTL.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&AWS_NAME_ADDRESS.octets());
    }
    Answer::Local(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stub resolver's query, with an EDNS record as glibc sends it.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        for label in name.split('.') {
            q.push(u8::try_from(label.len()).unwrap());
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        q
    }

    #[test]
    fn aws_names_are_answered_with_the_instance_listener() {
        let q = query("Lambda.us-east-1.amazonaws.com", TYPE_A);
        let Answer::Local(reply) = local_answer(&q) else {
            panic!("not answered locally");
        };
        assert_eq!(&reply[..2], &[0xab, 0xcd]);
        assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
        assert_eq!(read_u16(&reply, 6), Some(1), "one answer");
        assert_eq!(&reply[reply.len() - 4..], &[127, 0, 0, 1]);
        let question_end = q.len() - 11;
        assert_eq!(&reply[12..question_end], &q[12..question_end]);
    }

    #[test]
    fn aws_names_have_no_ipv6_address() {
        let Answer::Local(reply) = local_answer(&query("sqs.us-east-1.amazonaws.com", 28)) else {
            panic!("not answered locally");
        };
        assert_eq!(reply[3] & 0x0f, 0);
        assert_eq!(read_u16(&reply, 6), Some(0));
    }

    #[test]
    fn other_names_go_to_the_host_and_malformed_queries_get_formerr() {
        assert_eq!(local_answer(&query("example.com", TYPE_A)), Answer::Forward);
        let mut truncated = query("lambda.us-east-1.amazonaws.com", TYPE_A);
        truncated.truncate(20);
        let Answer::Local(reply) = local_answer(&truncated) else {
            panic!("no error answer");
        };
        assert_eq!(reply[3] & 0x0f, RCODE_FORMERR);
        assert_eq!(local_answer(&[0u8; 5]), Answer::Ignore);
    }

    #[test]
    fn upstreams_come_from_nameserver_lines() {
        let upstreams = Upstreams::from_resolv_conf(
            "# comment\nsearch example\nnameserver 10.0.0.2\nnameserver ::1\nnameserver bogus\n",
        );
        assert_eq!(
            upstreams.servers,
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    /// A resolver serving UDP and TCP on loopback, relaying to `servers`.
    fn resolver(servers: Vec<SocketAddr>) -> (SocketAddr, SocketAddr, JoinHandle<()>) {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (udp_at, tcp_at) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        let task = Arc::new(Upstreams { servers }).serve(udp, tcp).unwrap();
        (udp_at, tcp_at, task)
    }

    /// A name server's answer to `q` with `records` A records, each 16 bytes.
    fn big_answer(q: &[u8], records: u16) -> Vec<u8> {
        let question_end = parse_question(q).unwrap().end;
        let mut answer = reply_header(q, 0, 1, records);
        answer.extend_from_slice(&q[HEADER_LEN..question_end]);
        for i in 0..records {
            answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0]);
            answer.extend_from_slice(&i.to_be_bytes());
        }
        answer
    }

    /// A name server on `server`: the next query it gets, answered with `records` records.
    async fn answer_next(server: &UdpSocket, records: u16) {
        let mut buf = [0u8; 512];
        let (len, from) = server.recv_from(&mut buf).await.unwrap();
        let answer = big_answer(&buf[..len], records);
        server.send_to(&answer, from).await.unwrap();
    }

    #[tokio::test]
    async fn other_names_are_relayed_to_the_host_servers() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (resolver, _, task) = resolver(vec![server.local_addr().unwrap()]);
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let q = query("example.com", TYPE_A);
        client.send_to(&q, resolver).await.unwrap();
        let mut buf = [0u8; 512];
        let (len, from) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], &q[..]);
        let mut answer = buf[..len].to_vec();
        answer[2] |= 0x80;
        server.send_to(&answer, from).await.unwrap();
        let (len, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], &answer[..]);
        task.abort();
    }

    #[tokio::test]
    async fn tcp_queries_for_aws_names_are_answered_in_order_on_one_connection() {
        let (_, resolver, task) = resolver(Vec::new());
        let mut stream = TcpStream::connect(resolver).await.unwrap();
        let a = query("lambda.us-east-1.amazonaws.com", TYPE_A);
        let mut aaaa = query("lambda.us-east-1.amazonaws.com", 28);
        aaaa[..2].copy_from_slice(&[0x12, 0x34]);
        // Both written before either answer is read, as glibc does.
        write_framed(&mut stream, &a).await.unwrap();
        write_framed(&mut stream, &aaaa).await.unwrap();
        let first = read_framed(&mut stream).await.unwrap();
        assert_eq!(&first[..2], &[0xab, 0xcd]);
        assert_eq!(read_u16(&first, 6), Some(1));
        assert_eq!(&first[first.len() - 4..], &[127, 0, 0, 1]);
        let second = read_framed(&mut stream).await.unwrap();
        assert_eq!(&second[..2], &[0x12, 0x34]);
        assert_eq!(read_u16(&second, 6), Some(0));
        task.abort();
    }

    #[tokio::test]
    async fn udp_answers_too_large_are_truncated_and_tcp_gets_them_whole() {
        // A host name server on UDP and TCP with an answer of 100 records (1.6 KB).
        // The same port on both: a port free for UDP may be taken for TCP by a
        // test running beside this one, so try again until both are free.
        let mut tries = 0;
        let (upstream_udp, upstream_tcp, at) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let at = udp.local_addr().unwrap();
            match TcpListener::bind(at).await {
                Ok(tcp) => break (udp, tcp, at),
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("port {at} taken for TCP ({e}), trying another");
                }
                Err(e) => panic!("no port free for both UDP and TCP: {e}"),
            }
        };
        let upstream = tokio::spawn(async move {
            answer_next(&upstream_udp, 100).await;
            let (mut stream, _) = upstream_tcp.accept().await.unwrap();
            let q = read_framed(&mut stream).await.unwrap();
            write_framed(&mut stream, &big_answer(&q, 100))
                .await
                .unwrap();
        });
        let (udp_resolver, tcp_resolver, task) = resolver(vec![at]);

        // Over UDP with EDNS's 1232 bytes: the header and question, TC set.
        let mut q = query("many.example.com", TYPE_A);
        let size_at = q.len() - 8;
        q[size_at..size_at + 2].copy_from_slice(&1232u16.to_be_bytes());
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(&q, udp_resolver).await.unwrap();
        let mut buf = [0u8; 4096];
        let (len, _) = client.recv_from(&mut buf).await.unwrap();
        let question_end = q.len() - 11;
        assert_eq!(len, question_end, "header and question only");
        assert_eq!(buf[2] & FLAG_TC, FLAG_TC);
        assert_eq!(read_u16(&buf, 6), Some(0));
        assert_eq!(&buf[12..len], &q[12..question_end]);

        // Over TCP: all 100 records.
        let mut stream = TcpStream::connect(tcp_resolver).await.unwrap();
        write_framed(&mut stream, &q).await.unwrap();
        let whole = read_framed(&mut stream).await.unwrap();
        assert_eq!(whole[2] & FLAG_TC, 0);
        assert_eq!(read_u16(&whole, 6), Some(100));
        assert_eq!(whole, big_answer(&q, 100));
        upstream.await.unwrap();
        task.abort();
    }

    #[tokio::test]
    async fn tcp_connections_past_the_limit_are_closed_at_once() {
        let (_, resolver, task) = resolver(Vec::new());
        let mut open = Vec::new();
        for _ in 0..MAX_TCP_CONNECTIONS {
            open.push(TcpStream::connect(resolver).await.unwrap());
        }
        // Each of those is being served once it answers a query.
        for stream in &mut open {
            write_framed(stream, &query("sts.amazonaws.com", TYPE_A))
                .await
                .unwrap();
            read_framed(stream).await.unwrap();
        }
        let mut one_more = TcpStream::connect(resolver).await.unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(one_more.read(&mut byte).await.unwrap(), 0, "closed");
        // Closing one makes room again.
        drop(open.pop());
        let mut again = None;
        for _ in 0..200 {
            let mut stream = TcpStream::connect(resolver).await.unwrap();
            let q = query("sts.amazonaws.com", TYPE_A);
            if write_framed(&mut stream, &q).await.is_ok() && read_framed(&mut stream).await.is_ok()
            {
                again = Some(stream);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(again.is_some(), "a connection is served after one closed");
        task.abort();
    }

    #[tokio::test]
    async fn tcp_questions_go_over_udp_to_name_servers_without_tcp() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = server.local_addr().unwrap();
        let upstream = tokio::spawn(async move { answer_next(&server, 3).await });
        // Nothing listens on TCP at `at`: the relay's connection is refused.
        let (_, resolver, task) = resolver(vec![at]);
        let q = query("example.com", TYPE_A);
        let mut stream = TcpStream::connect(resolver).await.unwrap();
        write_framed(&mut stream, &q).await.unwrap();
        assert_eq!(read_framed(&mut stream).await.unwrap(), big_answer(&q, 3));
        upstream.await.unwrap();
        task.abort();
    }

    #[test]
    fn the_udp_limit_is_512_or_the_edns_size() {
        let mut q = query("example.com", TYPE_A);
        assert_eq!(udp_size_limit(&q), 1232, "the query helper advertises 1232");
        let size_at = q.len() - 8;
        q[size_at..size_at + 2].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(udp_size_limit(&q), 512, "never below 512");
        q.truncate(q.len() - 11);
        q[11] = 0;
        assert_eq!(udp_size_limit(&q), 512, "no EDNS record");
        let small = big_answer(&q, 2);
        assert_eq!(fit_udp(small.clone(), 512), small);
    }
}
