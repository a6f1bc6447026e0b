//! The DNS answerer of isolated instances.
//!
//! Every instance's network namespace has a UDP socket at `127.0.0.1:53`
//! (its `/etc/resolv.conf` names nothing else), served by a task of the
//! Strato process. Questions for AWS's names ([`crate::aws_names`]) are
//! answered on the spot with `127.0.0.1`, where Strato's in-namespace
//! listeners are; every other question is relayed unchanged to the host's
//! own name servers (from the host's `/etc/resolv.conf`) from the host's
//! network, and their answer relayed back, so other names resolve exactly as
//! the host resolves them. The socket costs one `bind` in the namespace
//! thread the instance's other listeners are opened by, and an idle task.
//!
//! Only what a stub resolver sends is understood: one question per query,
//! over UDP. An AWS name has an IPv4 address only (an `AAAA` question gets
//! an empty answer, so clients use the `A` one).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::aws_names::is_aws_name;

/// Where every isolated instance's resolver listens.
pub const INSTANCE_DNS_ADDR: &str = "127.0.0.1:53";
/// The `/etc/resolv.conf` of isolated instances.
pub const INSTANCE_RESOLV_CONF: &str = "nameserver 127.0.0.1\n";
/// The address AWS's names resolve to inside an instance.
const AWS_NAME_ADDRESS: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Time-to-live of those answers, in seconds.
const ANSWER_TTL: u32 = 300;
/// How long one upstream server may take before the next is asked.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest UDP message handled (a stub resolver with EDNS asks for at most this).
const MAX_MESSAGE: usize = 4096;
const HEADER_LEN: usize = 12;
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
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

    /// Answers the instance resolver's questions on `socket` until aborted.
    pub fn serve(self: &Arc<Self>, socket: std::net::UdpSocket) -> std::io::Result<JoinHandle<()>> {
        socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        let upstreams = self.clone();
        Ok(tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_MESSAGE];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let query = &buf[..len];
                match local_answer(query) {
                    Answer::Local(reply) => {
                        let _ = socket.send_to(&reply, peer).await;
                    }
                    Answer::Ignore => {}
                    Answer::Forward => {
                        let query = query.to_vec();
                        let socket = socket.clone();
                        let upstreams = upstreams.clone();
                        tokio::spawn(async move {
                            let reply = match upstreams.forward(&query).await {
                                Some(reply) => reply,
                                None => error_reply(&query, RCODE_SERVFAIL).unwrap_or_default(),
                            };
                            if !reply.is_empty() {
                                let _ = socket.send_to(&reply, peer).await;
                            }
                        });
                    }
                }
            }
        }))
    }

    /// The first answer of a host name server to `query`.
    async fn forward(&self, query: &[u8]) -> Option<Vec<u8>> {
        for server in &self.servers {
            let local: SocketAddr = if server.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let Ok(socket) = UdpSocket::bind(local).await else {
                continue;
            };
            if socket.connect(server).await.is_err() || socket.send(query).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; MAX_MESSAGE];
            // A reply must carry the query's id; anything else on the socket is ignored.
            let received = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
                loop {
                    let len = socket.recv(&mut buf).await.ok()?;
                    if len >= 2 && buf[..2] == query[..2] {
                        return Some(len);
                    }
                }
            })
            .await;
            if let Ok(Some(len)) = received {
                buf.truncate(len);
                return Some(buf);
            }
        }
        None
    }
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

    #[tokio::test]
    async fn other_names_are_relayed_to_the_host_servers() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let upstreams = Arc::new(Upstreams {
            servers: vec![server.local_addr().unwrap()],
        });
        let instance_side = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let resolver = instance_side.local_addr().unwrap();
        let task = upstreams.serve(instance_side).unwrap();
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
}
