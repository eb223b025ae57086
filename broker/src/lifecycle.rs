//! `BrokerLifecycleManager`: registers the broker with the active controller, heartbeats it
//! (reporting how far it has applied the metadata log, so the controller unfences it once it
//! has caught up), and on shutdown asks for a controlled shutdown before the process exits.
//!
//! It also decides when the broker may serve clients ([`BrokerLifecycleManager::serving`]):
//! once the metadata image the request handlers read shows this broker's current registration
//! unfenced. The controller unfences a broker only after its heartbeats report that it has
//! applied the metadata log up to its registration, and the handlers' image comes after the
//! replica manager has acted on it, so from that moment a Metadata answer lists this broker (and
//! every other live one) and a CreateTopics is forwarded to a controller that knows it. Kafka's
//! `BrokerServer` starts its request processing at the same point (after the initial unfence).
//! Serving, once begun, does not stop when the broker is fenced later (as in Kafka).
//!
//! Nothing on this broker acts on the metadata before it is registered
//! ([`BrokerLifecycleManager::wait_registered`]), as Kafka's `BrokerServer` installs its metadata
//! publishers only after the controller has acknowledged it: a broker restarted while its
//! previous incarnation's session lasts is refused (DUPLICATE_BROKER_REGISTRATION) until that
//! session expires, and meanwhile it must not fetch, rejoin ISRs and be elected leader of
//! partitions whose clients it cannot serve yet.

use crate::controller_channel::ControllerChannel;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::broker_registration_request::Listener;
use rafka_protocol::messages::{
    BrokerHeartbeatRequest, BrokerRegistrationRequest, RequestKind, ResponseKind,
};
use rafka_protocol::{ErrorCode, Uuid};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One advertised listener.
#[derive(Debug, Clone)]
pub struct AdvertisedListener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// The lifecycle's settings from `server.properties`.
#[derive(Debug, Clone, Copy)]
pub struct LifecycleConfig {
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `controlled.shutdown.enable`: ask the controller to move leadership away before
    /// stopping; without it the broker stops at once and its leaderships move when the
    /// controller sees it gone (its heartbeat connection closed, or its session expired).
    pub controlled_shutdown: bool,
    /// `initial.broker.registration.timeout.ms`: a broker not registered this long after it
    /// started gives up (Kafka's `RegistrationTimeoutEvent`; see [`BrokerLifecycleManager::failed`]).
    pub initial_registration_timeout: Duration,
}

pub struct BrokerLifecycleManager {
    broker_id: i32,
    channel: Arc<ControllerChannel>,
    listeners: Vec<AdvertisedListener>,
    rack: Option<String>,
    heartbeat_interval: Duration,
    controlled_shutdown: bool,
    initial_registration_timeout: Duration,
    /// Set once, with the reason, when the broker cannot go on (see [`Self::failed`]).
    fatal: watch::Sender<Option<String>>,
    epoch: AtomicI64,
    fenced: AtomicBool,
    shutting_down: AtomicBool,
    incarnation_id: Uuid,
    /// Becomes `true` once, when the broker may serve clients (see the module doc).
    serving: watch::Sender<bool>,
    /// Becomes `true` once, when the controller has accepted this incarnation's registration.
    registered: watch::Sender<bool>,
}

impl BrokerLifecycleManager {
    pub fn new(
        broker_id: i32,
        channel: Arc<ControllerChannel>,
        listeners: Vec<AdvertisedListener>,
        rack: Option<String>,
        config: LifecycleConfig,
    ) -> Arc<BrokerLifecycleManager> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Arc::new(BrokerLifecycleManager {
            broker_id,
            channel,
            listeners,
            rack,
            heartbeat_interval: config.heartbeat_interval,
            controlled_shutdown: config.controlled_shutdown,
            initial_registration_timeout: config.initial_registration_timeout,
            fatal: watch::channel(None).0,
            epoch: AtomicI64::new(-1),
            fenced: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
            incarnation_id: Uuid::from_u128(nanos ^ (u128::from(std::process::id()) << 96)),
            serving: watch::channel(false).0,
            registered: watch::channel(false).0,
        })
    }

    /// Resolves, with one line for the operator, once the broker cannot go on: it was not
    /// registered within `initial.broker.registration.timeout.ms` of starting. The process
    /// should stop with that line, as Kafka's broker exits when its registration times out.
    pub async fn failed(&self) -> String {
        let mut rx = self.fatal.subscribe();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone(),
            Err(_) => None,
        };
        match why {
            Some(why) => why,
            None => std::future::pending().await,
        }
    }

    /// Whether the broker serves clients yet (see the module doc).
    pub fn is_serving(&self) -> bool {
        *self.serving.borrow()
    }

    /// Resolves once the broker may serve clients; never, if the lifecycle manager is gone
    /// before that. Cancel-safe.
    pub async fn wait_serving(&self) {
        let mut rx = self.serving.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Resolves once the controller has accepted this incarnation's registration; never, if the
    /// lifecycle manager is gone before that. Cancel-safe.
    pub async fn wait_registered(&self) {
        let mut rx = self.registered.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Starts serving once `image` shows this broker's current registration unfenced.
    fn check_serving(&self, image: &MetadataImage) {
        if self.is_serving() {
            return;
        }
        let epoch = self.broker_epoch();
        let unfenced = image
            .broker(self.broker_id)
            .is_some_and(|b| epoch >= 0 && b.epoch == epoch && !b.fenced);
        if unfenced {
            tracing::info!(
                node_id = self.broker_id,
                epoch,
                offset = image.offset(),
                "caught up with the metadata log and unfenced: serving clients"
            );
            self.serving.send_replace(true);
        }
    }

    /// The epoch the controller gave this broker at registration (-1 before).
    pub fn broker_epoch(&self) -> i64 {
        self.epoch.load(Ordering::Relaxed)
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Relaxed)
    }

    /// Whether a controlled shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Registers, then heartbeats until `shutdown`; returns after the controller has allowed a
    /// controlled shutdown (or after a bounded wait). `log` is the metadata log as this node
    /// follows it (for the cluster id before registering); `metadata` is the image the broker
    /// has acted on (what the heartbeats report as caught up). Not registered within
    /// `initial.broker.registration.timeout.ms`, it gives up (see [`Self::failed`]).
    pub async fn run(
        self: Arc<Self>,
        mut log: watch::Receiver<Arc<MetadataImage>>,
        metadata: watch::Receiver<Arc<MetadataImage>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let timeout = self.initial_registration_timeout;
        // A stop ends the registration at once, an attempt in flight or not: no timeout to
        // report then.
        let mut stop = shutdown.clone();
        let registered = tokio::select! {
            r = tokio::time::timeout(timeout, self.register(&mut log)) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match registered {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                let why = format!(
                    "broker {} was not registered with the controller quorum within \
                     initial.broker.registration.timeout.ms ({} ms): shutting down",
                    self.broker_id,
                    timeout.as_millis()
                );
                self.fatal.send_replace(Some(why));
                return;
            }
        }
        // The heartbeats run on a thread of their own (see `heartbeat_loop`); this task ends
        // with them.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("rafka-heartbeat".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(me.heartbeat_loop(metadata, shutdown)),
                    Err(e) => tracing::error!(error = %e, "cannot start the heartbeat thread"),
                }
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => {
                let _ = done_rx.await;
            }
            Err(e) => tracing::error!(error = %e, "cannot start the heartbeat thread"),
        }
    }

    /// Registers this incarnation, retrying until the controller accepts it; false if the
    /// metadata log is gone first. The caller ends it on shutdown.
    async fn register(&self, log: &mut watch::Receiver<Arc<MetadataImage>>) -> bool {
        // The cluster id comes from the log: wait for the first active controller to write it.
        // A broker that is not a voter sees the log only once registered (it follows it as a
        // learner): when it has no id yet it registers without one and adopts the cluster's.
        let learner = !self.channel.is_voter();
        let cluster_id = loop {
            if let Some(id) = log.borrow_and_update().cluster_id().map(str::to_owned) {
                break id;
            }
            if learner {
                break String::new();
            }
            if log.changed().await.is_err() {
                return false;
            }
        };
        loop {
            let req = BrokerRegistrationRequest {
                broker_id: self.broker_id,
                cluster_id: cluster_id.clone(),
                incarnation_id: self.incarnation_id,
                listeners: self
                    .listeners
                    .iter()
                    .map(|l| Listener {
                        name: l.name.clone(),
                        host: l.host.clone(),
                        port: l.port,
                        security_protocol: 0,
                        ..Default::default()
                    })
                    .collect(),
                rack: self.rack.clone(),
                ..Default::default()
            };
            match self
                .channel
                .send(2, RequestKind::BrokerRegistration(req))
                .await
            {
                Some(ResponseKind::BrokerRegistration(r)) if r.error_code == 0 => {
                    self.epoch.store(r.broker_epoch, Ordering::Relaxed);
                    tracing::info!(
                        node_id = self.broker_id,
                        epoch = r.broker_epoch,
                        "registered with the controller"
                    );
                    self.registered.send_replace(true);
                    return true;
                }
                Some(ResponseKind::BrokerRegistration(r)) => {
                    tracing::warn!(node_id = self.broker_id, error = ?ErrorCode::from_code(r.error_code), "registration refused; retrying");
                }
                _ => tracing::warn!(
                    node_id = self.broker_id,
                    "no controller answered the registration; retrying"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Heartbeats until a controlled shutdown is allowed (or refused, or unanswered while
    /// shutting down). Runs on its own thread with its own runtime, as Kafka's
    /// `BrokerLifecycleManager` has its own event thread: the session must not depend on the
    /// request-serving runtime, whose workers a request touching tens of thousands of
    /// partitions can hold for longer than the session timeout (at 100,000 partitions on one
    /// node, heartbeats on that runtime left 1–2.8 s apart and the node fenced itself). The
    /// heartbeat connection is made from this runtime and used only here; in a combined node
    /// the heartbeat is recorded by its own controller's request path as it arrives, however
    /// late the controller's event loop handles it.
    async fn heartbeat_loop(
        self: Arc<Self>,
        mut metadata: watch::Receiver<Arc<MetadataImage>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut interval = tokio::time::interval(self.heartbeat_interval);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => {}
                _ = metadata.changed() => {
                    self.check_serving(&metadata.borrow_and_update());
                    // Report catching up promptly while still fenced.
                    if !self.is_fenced() { continue; }
                }
            }
            let want_shut_down = *shutdown.borrow();
            if want_shut_down && !self.controlled_shutdown {
                // `controlled.shutdown.enable=false`: no leadership moved first.
                tracing::info!(
                    node_id = self.broker_id,
                    "controlled.shutdown.enable is false: stopping without a controlled shutdown"
                );
                return;
            }
            if want_shut_down && !self.shutting_down.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    node_id = self.broker_id,
                    "asking the controller for a controlled shutdown"
                );
            }
            let offset = metadata.borrow().offset();
            let req = BrokerHeartbeatRequest {
                broker_id: self.broker_id,
                broker_epoch: self.epoch.load(Ordering::Relaxed),
                current_metadata_offset: offset,
                want_fence: false,
                want_shut_down,
                ..Default::default()
            };
            let sent = std::time::Instant::now();
            let answer = self
                .channel
                .send_heartbeat(1, RequestKind::BrokerHeartbeat(req))
                .await;
            let waited = sent.elapsed();
            if waited > self.heartbeat_interval * 4 {
                // Each attempt is bounded and the controller counts one from its arrival, so
                // the session holds; a controller this slow to answer is worth knowing of.
                tracing::warn!(
                    node_id = self.broker_id,
                    waited_ms = waited.as_millis() as u64,
                    answered = answer.is_some(),
                    "the controller was slow to answer a heartbeat"
                );
            }
            match answer {
                Some(ResponseKind::BrokerHeartbeat(r)) if r.error_code == 0 => {
                    let was = self.fenced.swap(r.is_fenced, Ordering::Relaxed);
                    if was && !r.is_fenced {
                        tracing::info!(node_id = self.broker_id, "unfenced");
                    }
                    self.check_serving(&metadata.borrow());
                    if want_shut_down && r.should_shut_down {
                        return;
                    }
                }
                Some(ResponseKind::BrokerHeartbeat(r)) => {
                    tracing::warn!(node_id = self.broker_id, error = ?ErrorCode::from_code(r.error_code), "heartbeat refused");
                    if want_shut_down {
                        return;
                    }
                }
                _ => {
                    if want_shut_down {
                        return;
                    }
                }
            }
        }
    }
}
