//! The kit's gRPC client (feature `grpc`): tonic over HTTP/2 with prior
//! knowledge, for the services of the contract's gRPC section, and two
//! clients that never speak (no preface; a preface and then no answer to
//! anything, PING included).
//!
//! The messages of `graceful.contract.v1` are written out here with prost's
//! derive rather than generated, so the kit needs no `protoc`; they are the
//! four messages of the contract's `proto/contract.proto`.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::ProstCodec;

/// The contract's service name, as health checks name it.
pub const CONTRACT: &str = "graceful.contract.v1.Contract";

/// `graceful.contract.v1.SleepRequest`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct SleepRequest {
    /// Milliseconds to wait.
    #[prost(uint32, tag = "1")]
    pub ms: u32,
}

/// `graceful.contract.v1.SleepReply`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SleepReply {
    /// `slept N`.
    #[prost(string, tag = "1")]
    pub message: String,
}

/// `graceful.contract.v1.TicksRequest`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct TicksRequest {
    /// Milliseconds between ticks.
    #[prost(uint32, tag = "1")]
    pub ms: u32,
}

/// `graceful.contract.v1.Tick`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Tick {
    /// From 0.
    #[prost(uint64, tag = "1")]
    pub index: u64,
}

/// A connection to a target's gRPC services.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
}

impl Client {
    /// Connects to `addr` (plaintext HTTP/2), within `timeout`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped connect leaves nothing behind.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Client, String> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("endpoint: {e}"))?
            .connect_timeout(timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("gRPC connect to {addr}: {e}"))?;
        Ok(Client { channel })
    }

    /// `grpc.health.v1.Health/Check` for `service`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it resets the call's stream.
    pub async fn check(&self, service: &str) -> Result<ServingStatus, Status> {
        let mut health = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let response = health.check(request).await?.into_inner();
        Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
    }

    /// `grpc.health.v1.Health/Watch` for `service`: the stream of statuses.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it resets the call's stream.
    pub async fn watch(&self, service: &str) -> Result<Watch, Status> {
        let mut health = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let stream = health.watch(request).await?.into_inner();
        Ok(Watch(stream))
    }

    /// `Contract/Sleep`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it resets the call's stream.
    pub async fn sleep(&self, ms: u32) -> Result<String, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unknown(format!("not ready: {e}")))?;
        let path = PathAndQuery::from_static("/graceful.contract.v1.Contract/Sleep");
        let codec = ProstCodec::<SleepRequest, SleepReply>::default();
        let reply = grpc
            .unary(Request::new(SleepRequest { ms }), path, codec)
            .await?;
        Ok(reply.into_inner().message)
    }

    /// `Contract/Ticks`: the stream of ticks.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it resets the call's stream.
    pub async fn ticks(&self, ms: u32) -> Result<Streaming<Tick>, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unknown(format!("not ready: {e}")))?;
        let path = PathAndQuery::from_static("/graceful.contract.v1.Contract/Ticks");
        let codec = ProstCodec::<TicksRequest, Tick>::default();
        let stream = grpc
            .server_streaming(Request::new(TicksRequest { ms }), path, codec)
            .await?;
        Ok(stream.into_inner())
    }
}

/// A `Health/Watch` stream.
#[derive(Debug)]
pub struct Watch(Streaming<tonic_health::pb::HealthCheckResponse>);

impl Watch {
    /// The next status; `Ok(None)` when the stream ended with status `OK`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a status not yet received stays in the stream.
    pub async fn next(&mut self) -> Result<Option<ServingStatus>, Status> {
        let message = self.0.message().await?;
        Ok(message.map(|m| ServingStatus::try_from(m.status).unwrap_or(ServingStatus::Unknown)))
    }
}

/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame (length 0, type 4, no flags, stream 0).
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A connection that never sends a byte: no preface.
pub fn preface_less(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, timeout)
}

/// A connection that sends the preface and an empty SETTINGS, then neither
/// reads nor answers anything: the server's SETTINGS go unacknowledged and
/// its shutdown PING unanswered.
pub fn ping_less(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.write_all(PREFACE)?;
    stream.write_all(SETTINGS)?;
    stream.flush()?;
    Ok(stream)
}
