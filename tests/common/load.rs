//! Load for cluster tests: an idempotent acks=all librdkafka producer on its own thread
//! ([`Writer`]) that records every acknowledgement (sequence number, partition, offset, time)
//! and every error, and [`send_waiting`], which queues a record without dropping it when
//! librdkafka's queue is full.

use rdkafka::error::KafkaError;
use rdkafka::message::{Message, ToBytes};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Queues `record`, waiting while the producer's queue is full.
pub fn send_waiting<'a, C, K, P>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
) where
    C: ProducerContext + 'static,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// One acknowledged message.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub seq: u64,
    pub partition: i32,
    /// The offset the acknowledgement named (-1 when the client does not know it).
    pub offset: i64,
    pub at: Instant,
}

/// What the producer's callbacks reported.
#[derive(Debug, Default)]
pub struct Reports {
    pub acks: Vec<Ack>,
    /// (seq, error) for each message that was not delivered.
    pub delivery_errors: Vec<(u64, String)>,
    /// Errors librdkafka reported on the client, with whether each was fatal (connection
    /// losses are expected during chaos; a fatal one — the idempotent producer giving up — is
    /// not).
    pub client_errors: Vec<(bool, String)>,
}

fn lock(m: &Mutex<Reports>) -> MutexGuard<'_, Reports> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Reports>>);

impl ClientContext for Recorder {
    fn error(&self, error: KafkaError, reason: &str) {
        let fatal = error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fatal);
        lock(&self.0)
            .client_errors
            .push((fatal, format!("{error}: {reason}")));
    }
}

impl ProducerContext for Recorder {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        let seq = |m: &rdkafka::message::BorrowedMessage<'_>| -> u64 {
            m.payload()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse().ok())
                .expect("a sequence number as the payload")
        };
        let mut d = lock(&self.0);
        match r {
            Ok(m) => d.acks.push(Ack {
                seq: seq(m),
                partition: m.partition(),
                offset: m.offset(),
                at: Instant::now(),
            }),
            Err((e, m)) => d.delivery_errors.push((seq(m), e.to_string())),
        }
    }
}

/// An idempotent acks=all producer on its own thread, sending sequence numbers 0, 1, 2, … as
/// payloads (message `seq` to partition `seq % partitions`) about every `pace` until stopped,
/// then flushing.
pub struct Writer {
    reports: Arc<Mutex<Reports>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Writer {
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        pace: Duration,
        message_timeout: Duration,
    ) -> Writer {
        let recorder = Recorder::default();
        let reports = recorder.0.clone();
        let producer: ThreadedProducer<Recorder> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("broker.address.family", "v4")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                message_timeout.as_millis().to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "500")
            .set("retry.backoff.ms", "50")
            .set("retry.backoff.max.ms", "500")
            .create_with_context(recorder)
            .expect("producer");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let topic = topic.to_owned();
        let thread = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let v = seq.to_string();
                let partition = (seq % partitions as u64) as i32;
                send_waiting(
                    &producer,
                    BaseRecord::<(), _>::to(&topic)
                        .partition(partition)
                        .payload(&v),
                );
                seq += 1;
                std::thread::sleep(pace);
            }
            // Errors show up in the delivery reports, which the tests check.
            let _ = producer.flush(Duration::from_secs(60));
            seq
        });
        Writer {
            reports,
            stop,
            thread,
        }
    }

    /// How many messages of partition `p` were acknowledged so far.
    pub fn acked_in(&self, p: i32) -> usize {
        lock(&self.reports)
            .acks
            .iter()
            .filter(|a| a.partition == p)
            .count()
    }

    /// The times of partition `p`'s acknowledgements, in order.
    pub fn ack_times(&self, p: i32) -> Vec<Instant> {
        lock(&self.reports)
            .acks
            .iter()
            .filter(|a| a.partition == p)
            .map(|a| a.at)
            .collect()
    }

    /// Stops sending and flushes; returns how many messages were sent, and the reports.
    pub fn finish(self) -> (u64, Reports) {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.thread.join().expect("producer thread");
        (sent, std::mem::take(&mut *lock(&self.reports)))
    }
}
