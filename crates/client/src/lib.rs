//! An async ZooKeeper client: one session over one connection, requests pipelined and
//! completed in order, watch events delivered on a channel.
//!
//! This first version connects to a single server; reconnect across a connect string and
//! config-driven rebalancing build on it.

pub mod host_provider;

pub use host_provider::HostProvider;

use bytes::{BufMut, Bytes, BytesMut};
use jute::{
    op, xid, Acl, ConnectRequest, CreateMode, ErrorCode, Id, Jute, ReplyHeader, Stat, WatcherEvent,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("server error {0}")]
    Keeper(ErrorCode),
    #[error("unknown server error code {0}")]
    UnknownCode(i32),
    #[error("connection lost")]
    ConnectionLoss,
    #[error("session expired or rejected by the server")]
    SessionExpired,
    #[error("i/o error: {0}")]
    Io(String),
    #[error("malformed reply: {0}")]
    Protocol(String),
}

impl Error {
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Keeper(c) => Some(*c),
            _ => None,
        }
    }
}

impl From<jute::JuteError> for Error {
    fn from(e: jute::JuteError) -> Self {
        Error::Protocol(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// world:anyone with every permission.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: jute::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

struct Pending {
    xid: i32,
    reply: oneshot::Sender<Result<Bytes>>,
}

struct Outbound {
    frame: Bytes,
    pending: Option<Pending>,
}

/// A connected session.
pub struct Client {
    outbound: mpsc::UnboundedSender<Outbound>,
    next_xid: Arc<Mutex<i32>>,
    session_id: i64,
    session_timeout: i32,
    events: Mutex<Option<mpsc::UnboundedReceiver<WatcherEvent>>>,
}

fn frame_with(f: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    f(&mut b);
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let len = r.read_i32().await?;
    if !(0..=64 * 1024 * 1024).contains(&len) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad frame length {len}"),
        ));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

impl Client {
    /// Connects to one server (`host:port`) and establishes a new session.
    pub async fn connect(addr: &str, session_timeout_ms: i32) -> Result<Client> {
        Self::connect_session(addr, session_timeout_ms, 0, vec![0; 16]).await
    }

    /// Connects, resuming `session_id` when it is non-zero.
    pub async fn connect_session(
        addr: &str,
        session_timeout_ms: i32,
        session_id: i64,
        passwd: Vec<u8>,
    ) -> Result<Client> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::Io(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::Io(e.to_string()))?;
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: session_timeout_ms,
            session_id,
            passwd: Some(passwd),
            read_only: false,
        };
        stream
            .write_all(&frame_with(|b| req.write(b)))
            .await
            .map_err(|e| Error::Io(e.to_string()))?;
        let body = read_frame(&mut stream)
            .await
            .map_err(|_| Error::SessionExpired)?;
        let resp = jute::ConnectResponse::decode(&body).or_else(|_| {
            // servers answering a pre-3.4 client omit readOnly; tolerate it
            let mut padded = body.clone();
            padded.push(0);
            jute::ConnectResponse::decode(&padded)
        })?;
        if resp.session_id == 0 {
            return Err(Error::SessionExpired);
        }
        let (rd, mut wr) = stream.into_split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outbound>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let queue: Arc<Mutex<VecDeque<Pending>>> = Arc::new(Mutex::new(VecDeque::new()));

        let writer_queue = queue.clone();
        tokio::spawn(async move {
            let mut batch = BytesMut::with_capacity(64 * 1024);
            while let Some(first) = out_rx.recv().await {
                let mut next = Some(first);
                while let Some(o) = next {
                    if let Some(p) = o.pending {
                        writer_queue.lock().expect("queue lock").push_back(p);
                    }
                    batch.extend_from_slice(&o.frame);
                    next = if batch.len() < 256 * 1024 {
                        out_rx.try_recv().ok()
                    } else {
                        None
                    };
                }
                if wr.write_all(&batch).await.is_err() {
                    break;
                }
                batch.clear();
            }
            let _ = wr.shutdown().await;
        });

        let reader_queue = queue;
        tokio::spawn(async move {
            let mut rd = BufReader::with_capacity(64 * 1024, rd);
            while let Ok(body) = read_frame(&mut rd).await {
                let mut r = jute::Reader::new(&body);
                let Ok(h) = ReplyHeader::read(&mut r) else {
                    break;
                };
                match h.xid {
                    xid::NOTIFICATION => {
                        if let Ok(ev) = WatcherEvent::read(&mut r) {
                            let _ = ev_tx.send(ev);
                        }
                    }
                    xid::PING => {}
                    _ => {
                        let Some(p) = reader_queue.lock().expect("queue lock").pop_front() else {
                            break;
                        };
                        let result = if p.xid != h.xid {
                            Err(Error::Protocol(format!(
                                "reply xid {} for request xid {}",
                                h.xid, p.xid
                            )))
                        } else if h.err != 0 {
                            Err(ErrorCode::from_code(h.err)
                                .map_or(Error::UnknownCode(h.err), Error::Keeper))
                        } else {
                            Ok(Bytes::copy_from_slice(r.rest()))
                        };
                        let _ = p.reply.send(result);
                    }
                }
            }
            for p in reader_queue.lock().expect("queue lock").drain(..) {
                let _ = p.reply.send(Err(Error::ConnectionLoss));
            }
        });

        let ping_tx = out_tx.clone();
        let interval = Duration::from_millis((resp.time_out.max(300) / 3) as u64);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let frame = frame_with(|b| {
                    jute::RequestHeader {
                        xid: xid::PING,
                        op_type: op::PING,
                    }
                    .write(b)
                });
                if ping_tx
                    .send(Outbound {
                        frame,
                        pending: None,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });

        Ok(Client {
            outbound: out_tx,
            next_xid: Arc::new(Mutex::new(1)),
            session_id: resp.session_id,
            session_timeout: resp.time_out,
            events: Mutex::new(Some(ev_rx)),
        })
    }

    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    pub fn session_timeout(&self) -> i32 {
        self.session_timeout
    }

    /// The watch events of this session, in arrival order (can be taken once).
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<WatcherEvent>> {
        self.events.lock().expect("events lock").take()
    }

    /// Sends a request and returns its reply body. The future completes in request order.
    pub async fn call(&self, op_type: i32, body: impl FnOnce(&mut BytesMut)) -> Result<Bytes> {
        let xid = {
            let mut next = self.next_xid.lock().expect("xid lock");
            let x = *next;
            *next = next.wrapping_add(1).max(1);
            x
        };
        let frame = frame_with(|b| {
            jute::RequestHeader { xid, op_type }.write(b);
            body(b);
        });
        let (tx, rx) = oneshot::channel();
        self.outbound
            .send(Outbound {
                frame,
                pending: Some(Pending { xid, reply: tx }),
            })
            .map_err(|_| Error::ConnectionLoss)?;
        rx.await.map_err(|_| Error::ConnectionLoss)?
    }

    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        let req = jute::CreateRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.flags(),
        };
        let body = self.call(op::CREATE, |b| req.write(b)).await?;
        Ok(jute::CreateResponse::decode(&body)?.path)
    }

    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        let req = jute::CreateRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.flags(),
        };
        let body = self.call(op::CREATE2, |b| req.write(b)).await?;
        let r = jute::Create2Response::decode(&body)?;
        Ok((r.path, r.stat))
    }

    pub async fn get_data(&self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat)> {
        let req = jute::GetDataRequest {
            path: path.into(),
            watch,
        };
        let body = self.call(op::GET_DATA, |b| req.write(b)).await?;
        let r = jute::GetDataResponse::decode(&body)?;
        Ok((r.data, r.stat))
    }

    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Stat> {
        let req = jute::SetDataRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        };
        let body = self.call(op::SET_DATA, |b| req.write(b)).await?;
        Ok(jute::SetDataResponse::decode(&body)?.stat)
    }

    pub async fn delete(&self, path: &str, version: i32) -> Result<()> {
        let req = jute::DeleteRequest {
            path: path.into(),
            version,
        };
        self.call(op::DELETE, |b| req.write(b)).await.map(|_| ())
    }

    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>> {
        let req = jute::ExistsRequest {
            path: path.into(),
            watch,
        };
        match self.call(op::EXISTS, |b| req.write(b)).await {
            Ok(body) => Ok(Some(jute::ExistsResponse::decode(&body)?.stat)),
            Err(Error::Keeper(ErrorCode::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>> {
        let req = jute::GetChildrenRequest {
            path: path.into(),
            watch,
        };
        let body = self.call(op::GET_CHILDREN, |b| req.write(b)).await?;
        Ok(jute::GetChildrenResponse::decode(&body)?.children)
    }

    pub async fn sync(&self, path: &str) -> Result<()> {
        let req = jute::SyncRequest { path: path.into() };
        self.call(op::SYNC, |b| req.write(b)).await.map(|_| ())
    }

    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let packet = jute::AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Some(auth.to_vec()),
        };
        let frame = frame_with(|b| {
            jute::RequestHeader {
                xid: xid::AUTH,
                op_type: op::AUTH,
            }
            .write(b);
            packet.write(b);
        });
        self.outbound
            .send(Outbound {
                frame,
                pending: Some(Pending {
                    xid: xid::AUTH,
                    reply: tx,
                }),
            })
            .map_err(|_| Error::ConnectionLoss)?;
        rx.await.map_err(|_| Error::ConnectionLoss)?.map(|_| ())
    }

    /// Closes the session (closeSession) and the connection.
    pub async fn close(self) -> Result<()> {
        self.call(op::CLOSE_SESSION, |_| {}).await.map(|_| ())
    }
}
