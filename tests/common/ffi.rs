//! Admin calls the rdkafka crate does not wrap, made through librdkafka's C API:
//! IncrementalAlterConfigs (KIP-339), DescribeCluster and ElectLeaders (KIP-460). Each call
//! runs on its own result queue, polled with a timeout, and frees everything it allocated.

use rdkafka::bindings as rd;
use rdkafka::client::Client;
use rdkafka::ClientContext;
use std::ffi::{CStr, CString};
use std::time::Duration;

/// One incremental change.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    Set(&'a str, &'a str),
    Delete(&'a str),
}

/// The outcome for one resource: `Ok` or the broker's error name and message.
pub type ResourceResult = Result<(), (String, String)>;

fn err_name(e: rd::rd_kafka_resp_err_t) -> String {
    // SAFETY: rd_kafka_err2name returns a static string for every code.
    unsafe { CStr::from_ptr(rd::rd_kafka_err2name(e)) }
        .to_string_lossy()
        .into_owned()
}

fn cstr(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: librdkafka hands out NUL-terminated strings valid while the event lives.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// A result queue and the event polled from it, freed on drop.
struct Call {
    queue: *mut rd::rd_kafka_queue_t,
    options: *mut rd::rd_kafka_AdminOptions_t,
    event: *mut rd::rd_kafka_event_t,
}

impl Call {
    fn new<C: ClientContext>(
        client: &Client<C>,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
    ) -> Call {
        let rk = client.native_ptr();
        // SAFETY: rk is a live client for the duration of the call (borrowed).
        unsafe {
            let queue = rd::rd_kafka_queue_new(rk);
            let options = rd::rd_kafka_AdminOptions_new(rk, op);
            let mut errbuf = [0 as std::os::raw::c_char; 256];
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options,
                timeout.as_millis() as i32,
                errbuf.as_mut_ptr(),
                errbuf.len(),
            );
            Call {
                queue,
                options,
                event: std::ptr::null_mut(),
            }
        }
    }

    /// Waits for the result event (`timeout` plus a margin); panics when none comes.
    fn wait(&mut self, timeout: Duration) -> Result<(), (String, String)> {
        // SAFETY: the queue is ours and alive.
        self.event = unsafe {
            rd::rd_kafka_queue_poll(
                self.queue,
                (timeout + Duration::from_secs(5)).as_millis() as i32,
            )
        };
        assert!(!self.event.is_null(), "no admin result within {timeout:?}");
        // SAFETY: a non-null event from our queue.
        let err = unsafe { rd::rd_kafka_event_error(self.event) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let msg = cstr(unsafe { rd::rd_kafka_event_error_string(self.event) });
            return Err((err_name(err), msg));
        }
        Ok(())
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // SAFETY: each pointer is ours, freed once.
        unsafe {
            if !self.event.is_null() {
                rd::rd_kafka_event_destroy(self.event);
            }
            rd::rd_kafka_AdminOptions_destroy(self.options);
            rd::rd_kafka_queue_destroy(self.queue);
        }
    }
}

/// Which resource to change.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Topic(&'a str),
    Broker(i32),
}

/// IncrementalAlterConfigs on one resource. `Err` at the outer level: the request as a whole
/// failed (e.g. the broker does not support the API); the inner result is the resource's.
pub fn incremental_alter_configs<C: ClientContext>(
    client: &Client<C>,
    resource: Resource<'_>,
    ops: &[Op<'_>],
    timeout: Duration,
) -> Result<ResourceResult, (String, String)> {
    let (restype, name) = match resource {
        Resource::Topic(t) => (
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            t.to_owned(),
        ),
        Resource::Broker(id) => (
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
            id.to_string(),
        ),
    };
    let name = CString::new(name).expect("resource name");
    let mut call = Call::new(
        client,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        timeout,
    );
    // SAFETY: the resource is created, filled and passed once; librdkafka copies it, we free it.
    unsafe {
        let mut res = rd::rd_kafka_ConfigResource_new(restype, name.as_ptr());
        for op in ops {
            let (k, v, t) = match *op {
                Op::Set(k, v) => (
                    k,
                    Some(v),
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                ),
                Op::Delete(k) => (
                    k,
                    None,
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
                ),
            };
            let k = CString::new(k).expect("config name");
            let v = v.map(|v| CString::new(v).expect("config value"));
            let e = rd::rd_kafka_ConfigResource_add_incremental_config(
                res,
                k.as_ptr(),
                t,
                v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
            );
            if !e.is_null() {
                let msg = cstr(rd::rd_kafka_error_string(e));
                rd::rd_kafka_error_destroy(e);
                rd::rd_kafka_ConfigResource_destroy(res);
                panic!("add_incremental_config: {msg}");
            }
        }
        rd::rd_kafka_IncrementalAlterConfigs(
            client.native_ptr(),
            &mut res,
            1,
            call.options,
            call.queue,
        );
        rd::rd_kafka_ConfigResource_destroy(res);
    }
    call.wait(timeout)?;
    // SAFETY: the event is an IncrementalAlterConfigs result that lives in `call`.
    unsafe {
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(call.event);
        assert!(!result.is_null(), "not an IncrementalAlterConfigs result");
        let mut n = 0usize;
        let resources = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut n);
        assert_eq!(n, 1, "one resource in the result");
        let r = *resources;
        let err = rd::rd_kafka_ConfigResource_error(r);
        if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(Ok(()))
        } else {
            Ok(Err((
                err_name(err),
                cstr(rd::rd_kafka_ConfigResource_error_string(r)),
            )))
        }
    }
}

/// What DescribeCluster answered.
#[derive(Debug, Clone)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller: Option<i32>,
    /// (id, host, port), sorted by id.
    pub nodes: Vec<(i32, String, u16)>,
}

pub fn describe_cluster<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
) -> Result<ClusterDescription, (String, String)> {
    let mut call = Call::new(
        client,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
        timeout,
    );
    // SAFETY: options and queue are ours; the result lives in `call.event`.
    unsafe {
        rd::rd_kafka_DescribeCluster(client.native_ptr(), call.options, call.queue);
    }
    call.wait(timeout)?;
    unsafe {
        let result = rd::rd_kafka_event_DescribeCluster_result(call.event);
        assert!(!result.is_null(), "not a DescribeCluster result");
        let mut n = 0usize;
        let nodes = rd::rd_kafka_DescribeCluster_result_nodes(result, &mut n);
        let mut out = Vec::new();
        for i in 0..n {
            let node = *nodes.add(i);
            out.push((
                rd::rd_kafka_Node_id(node),
                cstr(rd::rd_kafka_Node_host(node)),
                rd::rd_kafka_Node_port(node),
            ));
        }
        out.sort();
        let c = rd::rd_kafka_DescribeCluster_result_controller(result);
        Ok(ClusterDescription {
            cluster_id: cstr(rd::rd_kafka_DescribeCluster_result_cluster_id(result)),
            controller: (!c.is_null()).then(|| rd::rd_kafka_Node_id(c)),
            nodes: out,
        })
    }
}

/// ElectLeaders (KIP-460) of `partitions` of `topic`, preferred (`unclean` false) or
/// unclean: each partition's outcome, `Ok` or its error name (ELECTION_NOT_NEEDED when the
/// preferred replica already leads). `Err`: the request as a whole failed.
pub fn elect_leaders<C: ClientContext>(
    client: &Client<C>,
    unclean: bool,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<Vec<(i32, Result<(), String>)>, (String, String)> {
    let election = if unclean {
        rd::rd_kafka_ElectionType_t::RD_KAFKA_ELECTION_TYPE_UNCLEAN
    } else {
        rd::rd_kafka_ElectionType_t::RD_KAFKA_ELECTION_TYPE_PREFERRED
    };
    let name = CString::new(topic).expect("topic name");
    let mut call = Call::new(
        client,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ELECTLEADERS,
        timeout,
    );
    // SAFETY: the list and the request are created, passed once and freed here (librdkafka
    // copies the list into the request and the request into the call).
    unsafe {
        let tpl = rd::rd_kafka_topic_partition_list_new(partitions.len() as i32);
        for &p in partitions {
            rd::rd_kafka_topic_partition_list_add(tpl, name.as_ptr(), p);
        }
        let elect = rd::rd_kafka_ElectLeaders_new(election, tpl);
        rd::rd_kafka_topic_partition_list_destroy(tpl);
        rd::rd_kafka_ElectLeaders(client.native_ptr(), elect, call.options, call.queue);
        rd::rd_kafka_ElectLeaders_destroy(elect);
    }
    call.wait(timeout)?;
    // SAFETY: the event is an ElectLeaders result that lives in `call`.
    unsafe {
        let result = rd::rd_kafka_event_ElectLeaders_result(call.event);
        assert!(!result.is_null(), "not an ElectLeaders result");
        let mut n = 0usize;
        let results = rd::rd_kafka_ElectLeaders_result_partitions(result, &mut n);
        let mut out = Vec::new();
        for i in 0..n {
            let r = *results.add(i);
            let tp = rd::rd_kafka_topic_partition_result_partition(r);
            let err = rd::rd_kafka_topic_partition_result_error(r);
            let code = if err.is_null() {
                rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            } else {
                rd::rd_kafka_error_code(err)
            };
            let outcome = if code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                Ok(())
            } else {
                Err(err_name(code))
            };
            out.push(((*tp).partition, outcome));
        }
        out.sort_by_key(|(p, _)| *p);
        Ok(out)
    }
}

/// One consumed message, copied out of librdkafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A group-free librdkafka consumer: librdkafka's per-partition ("simple", legacy) consumer,
/// `rd_kafka_consume_start_queue` with explicit offsets — the path kcat takes. librdkafka's
/// `assign()` needs a `group.id`, and with one it looks for a group coordinator, which needs
/// FindCoordinator; this needs only Metadata, ListOffsets and Fetch.
///
/// The rdkafka `BaseConsumer` it wraps (no `group.id`) stays usable for `fetch_watermarks` and
/// `offsets_for_times`.
pub struct PartitionConsumer {
    queue: *mut rd::rd_kafka_queue_t,
    /// (topic handle, started partitions)
    topics: Vec<(String, *mut rd::rd_kafka_topic_t, Vec<i32>)>,
    /// Dropped last: owns the rd_kafka_t.
    pub client: rdkafka::consumer::BaseConsumer,
}

/// librdkafka's logical offsets.
pub const BEGINNING: i64 = -2;
pub const END: i64 = -1;
/// `RD_KAFKA_OFFSET_TAIL(n)`: `n` messages before the end.
pub fn tail(n: i64) -> i64 {
    -2000 - n
}

impl PartitionConsumer {
    pub fn new(client: rdkafka::consumer::BaseConsumer) -> PartitionConsumer {
        use rdkafka::consumer::Consumer;
        // SAFETY: a new queue on a live client; destroyed in Drop before the client.
        let queue = unsafe { rd::rd_kafka_queue_new(client.client().native_ptr()) };
        PartitionConsumer {
            queue,
            topics: Vec::new(),
            client,
        }
    }

    fn topic(&mut self, topic: &str) -> usize {
        use rdkafka::consumer::Consumer;
        if let Some(i) = self.topics.iter().position(|(t, _, _)| t == topic) {
            return i;
        }
        let name = CString::new(topic).expect("topic name");
        // SAFETY: a topic handle on a live client; destroyed in Drop.
        let rkt = unsafe {
            rd::rd_kafka_topic_new(
                self.client.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        assert!(!rkt.is_null(), "rd_kafka_topic_new({topic})");
        self.topics.push((topic.to_owned(), rkt, Vec::new()));
        self.topics.len() - 1
    }

    /// Starts fetching `topic`/`partition` at `offset` (an offset, [`BEGINNING`], [`END`] or
    /// [`tail`]`(n)`) into this consumer's queue.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) {
        let i = self.topic(topic);
        let rkt = self.topics[i].1;
        // SAFETY: live topic handle and queue.
        let r = unsafe { rd::rd_kafka_consume_start_queue(rkt, partition, offset, self.queue) };
        assert_eq!(r, 0, "consume_start {topic}/{partition} at {offset}");
        self.topics[i].2.push(partition);
    }

    /// The next message or error within `timeout`.
    pub fn poll(&self, timeout: Duration) -> Option<Result<Msg, String>> {
        // SAFETY: our queue; the message is copied out and destroyed before returning.
        unsafe {
            let m = rd::rd_kafka_consume_queue(self.queue, timeout.as_millis() as i32);
            if m.is_null() {
                return None;
            }
            let r = &*m;
            let out = if r.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let detail = if r.payload.is_null() {
                    String::new()
                } else {
                    String::from_utf8_lossy(std::slice::from_raw_parts(
                        r.payload as *const u8,
                        r.len,
                    ))
                    .into_owned()
                };
                Err(format!(
                    "partition {} offset {}: {} {detail}",
                    r.partition,
                    r.offset,
                    err_name(r.err)
                ))
            } else {
                let bytes = |p: *mut std::ffi::c_void, n: usize| {
                    (!p.is_null()).then(|| std::slice::from_raw_parts(p as *const u8, n).to_vec())
                };
                let mut tstype = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
                let timestamp = rd::rd_kafka_message_timestamp(m, &mut tstype);
                let mut headers = Vec::new();
                let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
                if rd::rd_kafka_message_headers(m, &mut hdrs)
                    == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                {
                    let mut idx = 0;
                    loop {
                        let mut name: *const std::os::raw::c_char = std::ptr::null();
                        let mut val: *const std::ffi::c_void = std::ptr::null();
                        let mut size = 0usize;
                        if rd::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut val, &mut size)
                            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                        {
                            break;
                        }
                        headers.push((cstr(name), bytes(val as *mut _, size)));
                        idx += 1;
                    }
                }
                Ok(Msg {
                    partition: r.partition,
                    offset: r.offset,
                    timestamp,
                    key: bytes(r.key, r.key_len),
                    payload: bytes(r.payload, r.len),
                    headers,
                })
            };
            rd::rd_kafka_message_destroy(m);
            Some(out)
        }
    }
}

impl Drop for PartitionConsumer {
    fn drop(&mut self) {
        // SAFETY: stop what we started, then free the handles and the queue, once each.
        unsafe {
            for (_, rkt, parts) in &self.topics {
                for p in parts {
                    rd::rd_kafka_consume_stop(*rkt, *p);
                }
                rd::rd_kafka_topic_destroy(*rkt);
            }
            rd::rd_kafka_queue_destroy(self.queue);
        }
    }
}
